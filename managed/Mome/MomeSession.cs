using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Options of a <see cref="MomeSession"/>.</summary>
public sealed record SessionOptions
{
    /// <summary>Positions each sequence's cache holds; 0 means the model's training context.</summary>
    public int ContextLength { get; init; }

    /// <summary>Sequences held at once (ids 0 .. MaxSequences-1).</summary>
    public int MaxSequences { get; init; } = 1;

    /// <summary>CPU threads; 0 means one per core.</summary>
    public int Threads { get; init; }

    /// <summary>Run the plain reference kernels instead of the fast paths (for checking).</summary>
    public bool UseReference { get; init; }

    /// <summary>A memory bank to run inside the model (null: the base model alone).</summary>
    public MemoryBank? Memory { get; init; }

    /// <summary>Run on this CUDA device (0 = the first GPU) instead of the CPU: weights and KV
    /// cache on the device (needs libmome_cuda). A memory bank is copied to the device when the
    /// session is made.</summary>
    public int? CudaDevice { get; init; }
}

/// <summary>
/// The frozen model's forward pass over a KV cache holding one or more sequences. Not
/// thread-safe: use one session per thread.
/// </summary>
public sealed unsafe class MomeSession : IDisposable
{
    private readonly SafeSessionHandle _handle;

    public MomeSession(MomeModel model, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new SessionOptions();
        var p = NativeMethods.mome_session_default_params();
        p.NCtx = options.ContextLength;
        p.NSeqMax = options.MaxSequences;
        p.NThreads = options.Threads;
        p.UseReference = options.UseReference ? (byte)1 : (byte)0;
        if (options.CudaDevice is { } device)
        {
            p.Backend = MomeBackend.Cuda;
            p.DeviceIndex = device;
        }
        if (options.Memory is { } bank && !ReferenceEquals(bank.Model, model))
            throw new ArgumentException("the memory bank was made for another MomeModel instance", nameof(options));
        _handle = SafeSessionHandle.Create(model.Handle, p, options.Memory?.Handle);
        Model = model;
        VocabSize = checked((int)model.Config.VocabSize);
    }

    public MomeModel Model { get; }

    internal SafeSessionHandle Handle => _handle;

    public int VocabSize { get; }

    /// <summary>
    /// Evaluates tokens of one or more sequences; each sequence's tokens must continue at its
    /// current length. Returns VocabSize logits per token whose <paramref name="wantLogits"/>
    /// is true (by default only the last token), in batch order. On error nothing changes.
    /// </summary>
    public float[] Decode(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, ReadOnlySpan<int> sequenceIds,
        ReadOnlySpan<bool> wantLogits = default)
    {
        if (positions.Length != tokens.Length || sequenceIds.Length != tokens.Length)
            throw new ArgumentException("tokens, positions and sequence ids must have the same length");
        if (!wantLogits.IsEmpty && wantLogits.Length != tokens.Length)
            throw new ArgumentException("wantLogits must be empty or as long as tokens", nameof(wantLogits));
        if (tokens.IsEmpty) throw new MomeException(MomeErrorCode.InvalidArgument, "the batch is empty: give at least one token");
        var rows = 1;
        byte[]? want = null;
        if (!wantLogits.IsEmpty)
        {
            want = new byte[tokens.Length];
            rows = 0;
            for (var i = 0; i < want.Length; i++)
            {
                want[i] = wantLogits[i] ? (byte)1 : (byte)0;
                rows += want[i];
            }
        }
        var logits = new float[(long)rows * VocabSize];
        fixed (int* t = tokens)
        fixed (int* p = positions)
        fixed (int* s = sequenceIds)
        fixed (byte* w = want)
        fixed (float* l = logits)
        {
            var batch = new MomeBatch { NTokens = tokens.Length, Tokens = t, Positions = p, SeqIds = s, WantLogits = w };
            var tp = (IntPtr)(&batch);
            var lp = (IntPtr)l;
            _handle.Use(h =>
            {
                Status.Check(NativeMethods.mome_session_decode(h, (MomeBatch*)tp, (float*)lp, (ulong)logits.LongLength));
                return 0;
            });
        }
        return logits;
    }

    /// <summary>Appends <paramref name="tokens"/> to sequence <paramref name="sequence"/> and
    /// returns the logits of every token (<paramref name="allLogits"/>) or of the last.</summary>
    public float[] Evaluate(ReadOnlySpan<int> tokens, int sequence = 0, bool allLogits = false)
    {
        var start = SequenceLength(sequence);
        var positions = new int[tokens.Length];
        var ids = new int[tokens.Length];
        for (var i = 0; i < positions.Length; i++)
        {
            positions[i] = start + i;
            ids[i] = sequence;
        }
        var want = allLogits ? Enumerable.Repeat(true, tokens.Length).ToArray() : null;
        return Decode(tokens, positions, ids, want);
    }

    public int SequenceLength(int sequence) => _handle.Use(h =>
    {
        int n;
        Status.Check(NativeMethods.mome_session_seq_length(h, sequence, &n));
        return n;
    });

    /// <summary>Keeps the first <paramref name="length"/> positions of a sequence.</summary>
    public void Truncate(int sequence, int length) => _handle.Use(h =>
    {
        Status.Check(NativeMethods.mome_session_seq_truncate(h, sequence, length));
        return 0;
    });

    public void Clear() => _handle.Use(h =>
    {
        Status.Check(NativeMethods.mome_session_clear(h));
        return 0;
    });

    public void Dispose() => _handle.Dispose();
}
