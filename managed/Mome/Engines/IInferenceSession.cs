namespace Mome.Engines;

/// <summary>
/// The forward pass over a KV cache of one or more sequences, whatever engine computes it:
/// <see cref="MomeSession"/> (the native core) or the managed ILGPU engine (Mome.Ilgpu).
/// Every engine validates a batch the same way and throws the same <see cref="MomeException"/>s.
/// </summary>
public interface IInferenceSession : IDisposable
{
    int VocabSize { get; }

    /// <summary>Positions each sequence's cache holds.</summary>
    int ContextLength { get; }

    /// <summary>Evaluates tokens of one or more sequences (each continuing at its current
    /// length); returns VocabSize logits per token whose <paramref name="wantLogits"/> is true
    /// (by default only the last token), in batch order. On error nothing changes.</summary>
    float[] Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> sequenceIds,
        ReadOnlySpan<bool> wantLogits = default, CancellationToken cancellationToken = default);

    /// <summary>Appends <paramref name="tokens"/> to one sequence; the logits of every token
    /// (<paramref name="allLogits"/>) or of the last.</summary>
    float[] Evaluate(ReadOnlySpan<int> tokens, int sequence = 0, bool allLogits = false,
        CancellationToken cancellationToken = default);

    int SequenceLength(int sequence);

    /// <summary>Keeps the first <paramref name="length"/> positions of a sequence.</summary>
    void Truncate(int sequence, int length);

    void Clear();
}

/// <summary>The batch that appends tokens to one sequence, shared by every engine's Evaluate.</summary>
public static class SequenceBatch
{
    public static (int[] Positions, int[] SequenceIds, bool[]? WantLogits) Continue(int start, int count, int sequence, bool allLogits)
    {
        var positions = new int[count];
        var ids = new int[count];
        for (var i = 0; i < count; i++)
        {
            positions[i] = start + i;
            ids[i] = sequence;
        }
        return (positions, ids, allLogits ? Enumerable.Repeat(true, count).ToArray() : null);
    }

    /// <summary>The shape every engine's Decode checks before anything runs: parallel arrays of
    /// one length (wantLogits empty or as long), at least one token.</summary>
    public static void CheckShape(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> sequenceIds, ReadOnlySpan<bool> wantLogits)
    {
        if (positions.Length != tokens.Length || sequenceIds.Length != tokens.Length)
            throw new ArgumentException("tokens, positions and sequence ids must have the same length");
        if (!wantLogits.IsEmpty && wantLogits.Length != tokens.Length)
            throw new ArgumentException("wantLogits must be empty or as long as tokens", nameof(wantLogits));
        if (tokens.IsEmpty) throw new MomeException(MomeErrorCode.InvalidArgument, "the batch is empty: give at least one token");
    }
}
