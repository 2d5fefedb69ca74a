using System.Runtime.CompilerServices;
using Mome.Engines;

namespace Mome;

/// <summary>Sampling plus when to stop.</summary>
public sealed record GenerationOptions : SamplingOptions
{
    /// <summary>Most tokens generated (the context length also ends generation).</summary>
    public int MaxTokens { get; init; } = 128;

    /// <summary>Stop at an end-of-generation token (EOS, EOT), which is not returned.</summary>
    public bool StopAtEndOfGeneration { get; init; } = true;
}

/// <summary>
/// Text generation with a model (and optionally a memory bank): tokenizes the prompt,
/// prefills it, then decodes one token at a time. Each call starts a new conversation.
/// Not thread-safe.
/// </summary>
public sealed class TextGenerator : IDisposable
{
    private readonly IInferenceSession _session;

    public TextGenerator(MomeModel model, SessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new SessionOptions();
        Tokenizer = MomeTokenizer.FromModel(model);
        _session = new MomeSession(model, options with { MaxSequences = 1 });
    }

    /// <summary>Generation over a session of any engine (the generator disposes it) with the model's tokenizer.</summary>
    public TextGenerator(IInferenceSession session, MomeTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _session = session;
        Tokenizer = tokenizer;
    }

    public MomeTokenizer Tokenizer { get; }

    /// <summary>Generated token ids after <paramref name="prompt"/> (token ids), one at a time.</summary>
    public IEnumerable<int> GenerateTokens(IReadOnlyList<int> prompt, GenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new GenerationOptions();
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty (no tokens)", nameof(prompt));
        if (options.MaxTokens < 0) throw new ArgumentOutOfRangeException(nameof(options), "MaxTokens must be >= 0");
        if (prompt.Count >= _session.ContextLength)
            throw new MomeException(MomeErrorCode.OutOfRange,
                $"the prompt has {prompt.Count} tokens; the context holds {_session.ContextLength}, leaving no room to generate");
        return Iterate(prompt.ToArray(), options, cancellationToken);
    }

    private IEnumerable<int> Iterate(int[] prompt, GenerationOptions options, CancellationToken cancellationToken)
    {
        var sampler = new Sampler(options);
        _session.Clear();
        var logits = _session.Evaluate(prompt, cancellationToken: cancellationToken);
        for (var produced = 0; produced < options.MaxTokens; produced++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var token = sampler.Sample(logits);
            if (options.StopAtEndOfGeneration && Tokenizer.IsEndOfGeneration(token)) yield break;
            yield return token;
            if (prompt.Length + produced + 1 >= _session.ContextLength) yield break;
            logits = _session.Evaluate([token], cancellationToken: cancellationToken);
        }
    }

    /// <summary>Streams the generated text as it completes (whole UTF-8 characters).</summary>
    public async IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var pieces = Pieces(prompt, options, cancellationToken).GetEnumerator();
        while (await Task.Run(pieces.MoveNext, cancellationToken).ConfigureAwait(false))
            yield return pieces.Current;
    }

    /// <summary>The whole generated text.</summary>
    public string Generate(string prompt, GenerationOptions? options = null) => string.Concat(Pieces(prompt, options, default));

    private IEnumerable<string> Pieces(string prompt, GenerationOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var tokens = Tokenizer.Encode(prompt);
        var decoder = new TokenTextDecoder(Tokenizer);
        // Primed with the prompt's first token, so the continuation keeps its leading space
        // (the decoder strips SentencePiece's space only at the start of a text).
        decoder.Append(tokens[0]);
        foreach (var token in GenerateTokens(tokens, options, cancellationToken))
        {
            var text = decoder.Append(token);
            if (text.Length > 0) yield return text;
        }
        var rest = decoder.Flush();
        if (rest.Length > 0) yield return rest;
    }

    public void Dispose() => _session.Dispose();
}
