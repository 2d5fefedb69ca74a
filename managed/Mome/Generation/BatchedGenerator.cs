using System.Threading.Channels;

namespace Mome;

/// <summary>Options of a <see cref="BatchedGenerator"/>.</summary>
public sealed record BatchedGeneratorOptions
{
    /// <summary>Sequences decoded together (the KV cache holds this many).</summary>
    public int MaxSequences { get; init; } = 4;

    /// <summary>Positions per sequence; 0 means the model's training context, at most 4096.</summary>
    public int ContextLength { get; init; }

    /// <summary>CPU threads; 0 means one per core.</summary>
    public int Threads { get; init; }

    /// <summary>A memory bank to run inside the model (null: the base model alone).</summary>
    public MemoryBank? Memory { get; init; }
}

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>The model produced an end-of-generation token (not returned).</summary>
    EndOfGeneration,
    /// <summary>The text reached one of the stop sequences (not returned).</summary>
    StopSequence,
    /// <summary>MaxTokens tokens were produced, or the sequence filled the context.</summary>
    Length,
}

/// <summary>
/// Continuous batching: generations started from any thread are decoded together by one
/// scheduler thread over one multi-sequence session. Each step packs, into one batch, the whole
/// prompt of every newly admitted generation and the latest token of every running one, then
/// samples each sequence's next token from its own logits. A generation waits for a free
/// sequence when all <see cref="BatchedGeneratorOptions.MaxSequences"/> are busy.
/// </summary>
public sealed class BatchedGenerator : IDisposable
{
    private readonly MomeSession _session;
    private readonly Channel<TokenStream> _waiting = Channel.CreateUnbounded<TokenStream>();
    private readonly Thread _scheduler;
    private readonly TokenStream?[] _slots;
    private int _queued;
    private int _peakSequences;

    public BatchedGenerator(MomeModel model, BatchedGeneratorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new BatchedGeneratorOptions();
        if (options.MaxSequences < 1) throw new ArgumentOutOfRangeException(nameof(options), $"MaxSequences {options.MaxSequences} must be >= 1");
        Model = model;
        Memory = options.Memory;
        Tokenizer = MomeTokenizer.FromModel(model);
        _session = new MomeSession(model, new SessionOptions
        {
            ContextLength = options.ContextLength, MaxSequences = options.MaxSequences, Threads = options.Threads, Memory = options.Memory,
        });
        _slots = new TokenStream?[options.MaxSequences];
        _scheduler = new Thread(Schedule) { IsBackground = true, Name = "mome-batched-generator" };
        _scheduler.Start();
    }

    public MomeModel Model { get; }

    public MemoryBank? Memory { get; }

    public MomeTokenizer Tokenizer { get; }

    /// <summary>Positions each sequence holds: a prompt plus its generated tokens fit in it.</summary>
    public int ContextLength => _session.ContextLength;

    public int MaxSequences => _slots.Length;

    /// <summary>The most sequences one step has decoded together so far.</summary>
    public int PeakSequences => Volatile.Read(ref _peakSequences);

    /// <summary>Generations started and not yet admitted to a sequence.</summary>
    public int Queued => Volatile.Read(ref _queued);

    /// <summary>Starts generating after <paramref name="prompt"/> (token ids); the tokens arrive
    /// on the returned stream as the scheduler produces them. Cancelling (or disposing the
    /// stream) frees its sequence at the next step.</summary>
    /// <exception cref="MomeException">The prompt leaves no room in the context.</exception>
    public TokenStream Start(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty (no tokens)", nameof(prompt));
        if (options.MaxTokens < 0) throw new ArgumentOutOfRangeException(nameof(options), $"MaxTokens {options.MaxTokens} must be >= 0");
        if (prompt.Count >= ContextLength)
            throw new MomeException(MomeErrorCode.OutOfRange,
                $"the prompt has {prompt.Count} tokens; the context holds {ContextLength}, leaving no room to generate");
        var stream = new TokenStream(prompt.ToArray(), options, new Sampler(options), cancellationToken);
        if (options.MaxTokens == 0)
        {
            stream.Finish(FinishReason.Length);
            return stream;
        }
        Interlocked.Increment(ref _queued);
        if (!_waiting.Writer.TryWrite(stream))
        {
            Interlocked.Decrement(ref _queued);
            throw new ObjectDisposedException(nameof(BatchedGenerator));
        }
        return stream;
    }

    private void Schedule()
    {
        var tokens = new List<int>();
        var positions = new List<int>();
        var sequences = new List<int>();
        var wantLogits = new List<bool>();
        var rows = new List<int>(); // the slot whose logits each output row holds
        while (true)
        {
            var running = _slots.Any(s => s is not null);
            if (!running && !_waiting.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) break;
            tokens.Clear();
            positions.Clear();
            sequences.Clear();
            wantLogits.Clear();
            rows.Clear();
            for (var slot = 0; slot < _slots.Length; slot++)
            {
                var stream = _slots[slot];
                if (stream is not null && stream.IsCancelled) Release(slot, FinishReason.Length, cancelled: true);
                stream = _slots[slot];
                if (stream is null && _waiting.Reader.TryRead(out var admitted))
                {
                    Interlocked.Decrement(ref _queued);
                    if (admitted.IsCancelled)
                    {
                        admitted.Cancel();
                        slot--;
                        continue;
                    }
                    _session.Truncate(slot, 0);
                    _slots[slot] = stream = admitted;
                }
                if (stream is null) continue;
                var start = stream.Length;
                var next = stream.Pending;
                for (var i = 0; i < next.Length; i++)
                {
                    tokens.Add(next[i]);
                    positions.Add(start + i);
                    sequences.Add(slot);
                    wantLogits.Add(i == next.Length - 1);
                }
                rows.Add(slot);
            }
            if (tokens.Count == 0) continue;
            if (rows.Count > _peakSequences) Volatile.Write(ref _peakSequences, rows.Count);
            float[] logits;
            try
            {
                logits = _session.Decode(tokens.ToArray(), positions.ToArray(), sequences.ToArray(), wantLogits.ToArray());
            }
            catch (Exception e) when (e is MomeException or ArgumentException)
            {
                foreach (var slot in rows) Release(slot, error: e);
                continue;
            }
            var vocab = _session.VocabSize;
            for (var row = 0; row < rows.Count; row++)
            {
                var slot = rows[row];
                var stream = _slots[slot]!;
                stream.Advance();
                var token = stream.Sampler.Sample(logits.AsSpan(row * vocab, vocab));
                if (stream.Options.StopAtEndOfGeneration && Tokenizer.IsEndOfGeneration(token)) Release(slot, FinishReason.EndOfGeneration);
                else if (!stream.Emit(token)) Release(slot, FinishReason.Length, cancelled: true);
                else if (stream.Produced >= stream.Options.MaxTokens || stream.Length >= ContextLength) Release(slot, FinishReason.Length);
            }
        }
        for (var slot = 0; slot < _slots.Length; slot++)
            if (_slots[slot] is not null) Release(slot, error: new ObjectDisposedException(nameof(BatchedGenerator)));
        while (_waiting.Reader.TryRead(out var left)) left.Fail(new ObjectDisposedException(nameof(BatchedGenerator)));
    }

    private void Release(int slot, FinishReason reason = FinishReason.Length, bool cancelled = false, Exception? error = null)
    {
        var stream = _slots[slot]!;
        _slots[slot] = null;
        if (error is not null) stream.Fail(error);
        else if (cancelled) stream.Cancel();
        else stream.Finish(reason);
    }

    /// <summary>Stops the scheduler after the current step; unfinished generations fail with
    /// <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        _waiting.Writer.TryComplete();
        foreach (var stream in _slots) stream?.Dispose();
        if (Thread.CurrentThread != _scheduler) _scheduler.Join();
        _session.Dispose();
    }
}

/// <summary>One generation's tokens as the scheduler of a <see cref="BatchedGenerator"/>
/// produces them. Dispose it to stop the generation early.</summary>
public sealed class TokenStream : IDisposable
{
    private readonly Channel<int> _tokens = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly CancellationTokenSource _stop;
    private int[] _pending;

    internal TokenStream(int[] prompt, GenerationOptions options, Sampler sampler, CancellationToken cancellationToken)
    {
        Prompt = prompt;
        _pending = prompt;
        Options = options;
        Sampler = sampler;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    }

    public IReadOnlyList<int> Prompt { get; }

    internal GenerationOptions Options { get; }

    internal Sampler Sampler { get; }

    /// <summary>Why it ended; null until <see cref="Tokens"/> completes (and after a failure).</summary>
    public FinishReason? FinishReason { get; private set; }

    /// <summary>Tokens produced so far.</summary>
    public int Produced { get; private set; }

    public ChannelReader<int> Tokens => _tokens.Reader;

    internal bool IsCancelled => _stop.IsCancellationRequested;

    // Positions already in the cache, and the tokens the next step feeds.
    internal int Length { get; private set; }

    internal int[] Pending => _pending;

    internal void Advance()
    {
        Length += _pending.Length;
        _pending = [];
    }

    internal bool Emit(int token)
    {
        if (IsCancelled) return false;
        Produced++;
        _pending = [token];
        return _tokens.Writer.TryWrite(token);
    }

    internal void Finish(FinishReason reason)
    {
        FinishReason = reason;
        _tokens.Writer.TryComplete();
    }

    internal void Cancel() => _tokens.Writer.TryComplete(new OperationCanceledException(_stop.Token));

    internal void Fail(Exception error) => _tokens.Writer.TryComplete(error);

    public void Dispose() => _stop.Cancel();
}
