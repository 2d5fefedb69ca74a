using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Mome.AI;

/// <summary>Options of a <see cref="MomeChatClient"/> that makes its own generator.</summary>
public sealed record MomeChatClientOptions
{
    /// <summary>The id responses carry (default: the model file's name without extension).</summary>
    public string? ModelId { get; init; }

    /// <summary>A memory bank to answer with (null: the base model alone).</summary>
    public MemoryBank? Memory { get; init; }

    /// <summary>Conversations decoded together.</summary>
    public int MaxSequences { get; init; } = 1;

    /// <summary>Positions per conversation; 0 means the model's training context, at most 4096.</summary>
    public int ContextLength { get; init; }

    public int Threads { get; init; }
}

/// <summary>
/// An <see cref="IChatClient"/> over a Mome model (and optionally a memory bank), decoding
/// through a <see cref="BatchedGenerator"/>, so concurrent calls share one batched step.
/// Conversations are rendered with the model's chat template (<see cref="ChatTemplate"/>); with a
/// bank that remembers the prompt its facts were tuned with, the last user message is asked in
/// that prompt alone, exactly as tuning asked it, so that memorised questions reach their
/// answers (earlier turns are then not part of the prompt). Without a temperature in the
/// options decoding is greedy; without MaxOutputTokens it runs to the end of the context.
/// </summary>
public sealed class MomeChatClient : IChatClient
{
    private readonly BatchedGenerator _generator;
    private readonly bool _ownsGenerator;
    private readonly ChatTemplate _template;
    private readonly ChatClientMetadata _metadata;

    /// <summary>A client with a generator of its own (disposed with the client).</summary>
    public MomeChatClient(MomeModel model, MomeChatClientOptions? options = null)
        : this(new BatchedGenerator(model, new BatchedGeneratorOptions
        {
            MaxSequences = (options ?? new()).MaxSequences, ContextLength = (options ?? new()).ContextLength,
            Threads = (options ?? new()).Threads, Memory = options?.Memory,
        }), options?.ModelId, ownsGenerator: true)
    {
    }

    /// <summary>A client over a shared generator (which the caller disposes).</summary>
    public MomeChatClient(BatchedGenerator generator, string? modelId = null) : this(generator, modelId, ownsGenerator: false)
    {
    }

    private MomeChatClient(BatchedGenerator generator, string? modelId, bool ownsGenerator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        _generator = generator;
        _ownsGenerator = ownsGenerator;
        _template = ChatTemplate.FromModel(generator.Model);
        ModelId = modelId ?? Path.GetFileNameWithoutExtension(generator.Model.Path);
        _metadata = new ChatClientMetadata("mome", null, ModelId);
    }

    public string ModelId { get; }

    public ChatTemplate Template => _template;

    /// <summary>The prompt a conversation is decoded after, and whether it holds special-token
    /// markers to tokenize as special tokens.</summary>
    public (string Text, bool ParseSpecial) RenderPrompt(IEnumerable<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = messages.Select(m => new ChatTurn(m.Role.Value.ToLowerInvariant(), m.Text)).ToList();
        if (turns.Count == 0) throw new ArgumentException("the conversation has no messages", nameof(messages));
        if (_generator.Memory?.PromptTemplate is not null)
        {
            var question = turns.LastOrDefault(t => t.Role == "user")
                ?? throw new ArgumentException("the conversation has no user message to ask the memory bank", nameof(messages));
            return (_generator.Memory.PromptOf(question.Content)!, false);
        }
        return (_template.Render(turns), _template.HasSpecialMarkers);
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (text, parseSpecial) = RenderPrompt(messages);
        var prompt = _generator.Tokenizer.Encode(text, parseSpecial: parseSpecial);
        var stops = (options?.StopSequences ?? []).Concat(_generator.Memory?.PromptTemplate is null ? _template.EndOfTurn : []).ToList();
        var completion = new TextCompletion(_generator, prompt, GenerationOptionsOf(options, prompt.Length), stops);
        var responseId = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        ChatResponseUpdate Update(string? content) => new(ChatRole.Assistant, content)
        {
            ResponseId = responseId, MessageId = responseId, ModelId = ModelId, CreatedAt = created,
        };
        var started = false;
        await foreach (var piece in completion.StreamAsync(cancellationToken).ConfigureAwait(false))
        {
            // The answer's own text: a prompt's "A:" is followed by a space the reply does not need.
            var shown = started ? piece : piece.TrimStart();
            if (shown.Length == 0) continue;
            started = true;
            yield return Update(shown);
        }
        var last = Update(null);
        last.FinishReason = completion.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;
        last.Contents.Add(new UsageContent(new UsageDetails
        {
            InputTokenCount = completion.PromptTokens, OutputTokenCount = completion.CompletionTokens,
            TotalTokenCount = completion.PromptTokens + completion.CompletionTokens,
        }));
        yield return last;
    }

    /// <summary>Sampling and length limits from chat options (greedy and to the end of the
    /// context when they say nothing).</summary>
    public GenerationOptions GenerationOptionsOf(ChatOptions? options, int promptTokens)
    {
        var room = Math.Max(0, _generator.ContextLength - promptTokens);
        if (options?.MaxOutputTokens is < 0) throw new ArgumentOutOfRangeException(nameof(options), $"MaxOutputTokens {options.MaxOutputTokens} must be >= 0");
        return new GenerationOptions
        {
            Temperature = options?.Temperature ?? 0,
            TopP = options?.TopP ?? 1,
            TopK = options?.TopK ?? 0,
            Seed = options?.Seed is { } seed ? unchecked((int)seed) : 42,
            MaxTokens = Math.Min(options?.MaxOutputTokens ?? room, room),
        };
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(BatchedGenerator)) return _generator;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        if (_ownsGenerator) _generator.Dispose();
    }
}
