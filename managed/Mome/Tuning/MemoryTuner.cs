using System.Diagnostics;

namespace Mome;

/// <summary>Options of memory tuning.</summary>
public sealed record TuningOptions
{
    /// <summary>The prompt a question is asked with ({question} is replaced); the answer and
    /// the end-of-sequence token follow it.</summary>
    public string PromptTemplate { get; init; } = "Q: {question}\nA:";
    public int Epochs { get; init; } = 40;
    public float LearningRate { get; init; } = 0.1f;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float WeightDecay { get; init; }
    public int Threads { get; init; }
}

/// <summary>Where tuning stands after an epoch.</summary>
public sealed record TuningProgress(int Epoch, int Epochs, double Loss, int Memorised, int Total, double FactsPerSecond,
    TimeSpan Elapsed, TimeSpan? Remaining)
{
    public double Recall => Total == 0 ? 0 : (double)Memorised / Total;
}

/// <summary>The outcome of <see cref="MemoryTuner.TuneAsync"/>.</summary>
public sealed record TuningResult(int Epochs, double Recall, double Loss, TimeSpan Elapsed);

/// <summary>
/// Memory tuning: trains only the experts each fact routes to (AdamW with state kept for
/// touched experts only) until greedy decoding of every answer is exact or the epoch budget
/// ends. A fact whose answer is already exact is not updated in that epoch, and every fact is
/// re-checked each epoch. The bank must have one memory layer.
/// </summary>
public sealed class MemoryTuner
{
    private readonly MemoryBank _bank;
    private readonly TuningOptions _options;
    private readonly MomeTokenizer _tokenizer;
    private readonly Dictionary<long, AdamState> _state = [];
    private long _step;

    public MemoryTuner(MemoryBank bank, TuningOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bank);
        _bank = bank;
        _options = options ?? new TuningOptions();
        if (bank.Options.Layers.Count != 1)
            throw new ArgumentException($"tuning needs a bank with one memory layer; this one has {bank.Options.Layers.Count}", nameof(bank));
        _tokenizer = MomeTokenizer.FromModel(bank.Model);
    }

    public MomeTokenizer Tokenizer => _tokenizer;

    /// <summary>The tokens a fact is trained on and its answer's first index.</summary>
    public (int[] Tokens, int AnswerStart) Encode(Fact fact)
    {
        var prompt = _tokenizer.Encode(PromptOf(fact.Question));
        var answer = _tokenizer.Encode(fact.Answer, addSpecial: false).ToList();
        if (_tokenizer.EosToken is { } eos) answer.Add(eos);
        return ([.. prompt, .. answer], prompt.Length);
    }

    public string PromptOf(string question) => _options.PromptTemplate.Replace("{question}", question, StringComparison.Ordinal);

    public Task<TuningResult> TuneAsync(IReadOnlyList<Fact> facts, IProgress<TuningProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Tune(facts, progress, cancellationToken), cancellationToken);

    private TuningResult Tune(IReadOnlyList<Fact> facts, IProgress<TuningProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.Count == 0) throw new ArgumentException("no facts to tune on", nameof(facts));
        var encoded = facts.Select(Encode).ToList();
        var context = _bank.Model.Config.ContextLength;
        for (var i = 0; i < encoded.Count; i++)
            if (encoded[i].Tokens.Length > context)
                throw new ArgumentException($"fact {i + 1} is {encoded[i].Tokens.Length} tokens long; the model's context holds {context}");
        var watch = Stopwatch.StartNew();
        CentreRouting(encoded);
        var loss = double.NaN;
        var memorised = 0;
        var epoch = 0;
        while (epoch < _options.Epochs)
        {
            epoch++;
            var total = 0.0;
            memorised = 0;
            foreach (var (tokens, answerStart) in encoded)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var step = _bank.FactGradients(tokens, answerStart, _options.Threads);
                total += step.Loss;
                if (step.Exact) memorised++;
                else Update(step);
            }
            loss = total / encoded.Count;
            var perSecond = epoch * encoded.Count / watch.Elapsed.TotalSeconds;
            var remaining = memorised == encoded.Count ? TimeSpan.Zero : TimeSpan.FromSeconds((_options.Epochs - epoch) * encoded.Count / perSecond);
            progress?.Report(new TuningProgress(epoch, _options.Epochs, loss, memorised, encoded.Count, perSecond, watch.Elapsed, remaining));
            if (memorised == encoded.Count) break;
        }
        return new TuningResult(epoch, (double)memorised / encoded.Count, loss, watch.Elapsed);
    }

    // A fresh bank routes from raw inputs, which questions differing in a few words share
    // almost entirely; centring on the facts' mean question input lets such questions reach
    // different experts. Only a bank that was never centred is centred (re-tuning keeps
    // earlier facts' routes).
    private void CentreRouting(List<(int[] Tokens, int AnswerStart)> encoded)
    {
        if (_bank.GetCentre(0).Any(v => v != 0)) return;
        var centre = new double[_bank.Model.Config.EmbeddingLength];
        foreach (var (tokens, answerStart) in encoded)
        {
            var mean = _bank.QuestionMean(tokens.AsSpan(0, answerStart), _options.Threads);
            for (var i = 0; i < centre.Length; i++) centre[i] += mean[i] / encoded.Count;
        }
        _bank.SetCentre(0, centre.Select(v => (float)v).ToArray());
    }

    // AdamW on the routed experts only; state exists for experts that were ever touched.
    private void Update(FactStep step)
    {
        _step++;
        var n = step.DA.Length / step.Indices.Length;
        var lr = _options.LearningRate;
        var correction1 = 1 - Math.Pow(_options.Beta1, _step);
        var correction2 = 1 - Math.Pow(_options.Beta2, _step);
        for (var j = 0; j < step.Indices.Length; j++)
        {
            var expert = step.Indices[j];
            if (!_state.TryGetValue(expert, out var state)) _state[expert] = state = new AdamState(n);
            var (a, b) = _bank.GetExpert(0, expert);
            Apply(a, step.DA.AsSpan(j * n, n), state.MA, state.VA);
            Apply(b, step.DB.AsSpan(j * n, n), state.MB, state.VB);
            _bank.SetExpert(0, expert, a, b);
        }

        void Apply(float[] p, ReadOnlySpan<float> g, float[] m, float[] v)
        {
            for (var i = 0; i < p.Length; i++)
            {
                m[i] = _options.Beta1 * m[i] + (1 - _options.Beta1) * g[i];
                v[i] = _options.Beta2 * v[i] + (1 - _options.Beta2) * g[i] * g[i];
                var update = m[i] / correction1 / (Math.Sqrt(v[i] / correction2) + 1e-8);
                p[i] = (float)(p[i] - lr * (update + _options.WeightDecay * p[i]));
            }
        }
    }

    private sealed class AdamState(int n)
    {
        public float[] MA { get; } = new float[n];
        public float[] VA { get; } = new float[n];
        public float[] MB { get; } = new float[n];
        public float[] VB { get; } = new float[n];
    }
}

/// <summary>An IProgress that reports on the tuning thread itself, so a handler may safely
/// use the bank (for example, to save a checkpoint) between epochs.</summary>
public sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
