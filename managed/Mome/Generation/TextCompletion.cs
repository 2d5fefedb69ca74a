using System.Runtime.CompilerServices;

namespace Mome;

/// <summary>
/// A generation of a <see cref="BatchedGenerator"/> as text: its tokens decoded into whole
/// UTF-8 characters and cut at the first stop sequence (which ends the generation).
/// </summary>
public sealed class TextCompletion
{
    private readonly BatchedGenerator _generator;
    private readonly IReadOnlyList<int> _prompt;
    private readonly GenerationOptions _options;
    private readonly IReadOnlyList<string> _stops;

    /// <summary>A completion of <paramref name="prompt"/>; <paramref name="stops"/> (null or empty: none) end it.</summary>
    public TextCompletion(BatchedGenerator generator, IReadOnlyList<int> prompt, GenerationOptions options, IReadOnlyList<string>? stops = null)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        _generator = generator;
        _prompt = prompt;
        _options = options;
        _stops = stops ?? [];
    }

    public int PromptTokens => _prompt.Count;

    /// <summary>Tokens generated (those after a stop sequence was reached are not counted).</summary>
    public int CompletionTokens { get; private set; }

    /// <summary>Why it ended; set once <see cref="StreamAsync"/> has finished.</summary>
    public FinishReason? FinishReason { get; private set; }

    /// <summary>Starts the generation and streams its text as it completes.</summary>
    public async IAsyncEnumerable<string> StreamAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var stream = _generator.Start(_prompt, _options, cancellationToken);
        var decoder = new TokenTextDecoder(_generator.Tokenizer);
        // Primed with the prompt's first token, so the continuation keeps its leading space
        // (the decoder strips SentencePiece's space only at the start of a text).
        decoder.Append(_prompt[0]);
        var filter = new StopSequenceFilter(_stops);
        await foreach (var token in stream.Tokens.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested(); // tokens already queued are not read
            CompletionTokens++;
            var text = filter.Push(decoder.Append(token));
            if (text.Length > 0) yield return text;
            if (filter.Stopped)
            {
                FinishReason = Mome.FinishReason.StopSequence;
                yield break;
            }
        }
        var rest = filter.Push(decoder.Flush()) + filter.Flush();
        if (rest.Length > 0) yield return rest;
        FinishReason = filter.Stopped ? Mome.FinishReason.StopSequence : stream.FinishReason;
    }
}
