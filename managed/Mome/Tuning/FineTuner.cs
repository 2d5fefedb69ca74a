using System.Diagnostics;
using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>What fine-tuning trains: LoRA adapters beside every projection of every block, or
/// every weight of the model (a private F32 copy; the model file is never changed).</summary>
public enum FineTuningMode { Lora, Full }

/// <summary>Options of <see cref="FineTuner"/> (AdamW over every trained value).</summary>
public sealed record FineTuningOptions
{
    public FineTuningMode Mode { get; init; } = FineTuningMode.Lora;
    /// <summary>The adapters' rank and alpha (their output is scaled by alpha / rank); LoRA only.</summary>
    public int Rank { get; init; } = 8;
    public float Alpha { get; init; } = 16;
    public float LearningRate { get; init; } = 1e-3f;
    public float WeightDecay { get; init; }
    public int Epochs { get; init; } = 100;
    public int BatchSize { get; init; } = 16;
    public int Threads { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>The same prompt as memory tuning's (<see cref="TuningOptions.PromptTemplate"/>).</summary>
    public string PromptTemplate { get; init; } = new TuningOptions().PromptTemplate;
}

/// <summary>The outcome of <see cref="FineTuner.Tune"/>: epochs run, the exact recall each epoch
/// measured (before its updates, as memory tuning counts it), steps and time.</summary>
public sealed record FineTuningResult(int Epochs, double Recall, TimeSpan Elapsed)
{
    public long Steps { get; init; }
    public long Updates { get; init; }
    public IReadOnlyList<double> RecallCurve { get; init; } = [];
}

/// <summary>
/// The usual alternatives to memory tuning (mome.h, "The fine-tuner"): trains on the facts
/// rendered exactly as <see cref="MemoryTuner"/> renders them, with the same loss on the answer
/// tokens and the same per-fact early stop, until every answer is exact or the epoch budget ends.
/// </summary>
public sealed unsafe class FineTuner : IDisposable
{
    private readonly SafeFinetunerHandle _handle;
    private readonly FineTuningOptions _options;
    private bool _tuned;

    public FineTuner(MomeModel model, FineTuningOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new FineTuningOptions();
        if (_options.Epochs < 1) throw new ArgumentException($"the epoch budget is {_options.Epochs}; it must be at least 1", nameof(options));
        Encoder = new FactEncoder(MomeTokenizer.FromModel(model), _options.PromptTemplate);
        var p = Defaults();
        p.Mode = _options.Mode == FineTuningMode.Full ? MomeFinetuneMode.Full : MomeFinetuneMode.Lora;
        p.Rank = _options.Rank;
        p.Alpha = _options.Alpha;
        p.LearningRate = _options.LearningRate;
        p.WeightDecay = _options.WeightDecay;
        p.BatchSize = _options.BatchSize;
        p.NThreads = _options.Threads;
        p.Seed = _options.Seed;
        _handle = SafeFinetunerHandle.Create(model.Handle, m =>
        {
            IntPtr finetuner;
            var given = p;
            Status.Check(NativeMethods.mome_finetuner_create(m, &given, &finetuner));
            return finetuner;
        });
    }

    public FactEncoder Encoder { get; }

    private static MomeFinetunerParams Defaults()
    {
        var p = new MomeFinetunerParams { StructSize = (uint)sizeof(MomeFinetunerParams) };
        Status.Check(NativeMethods.mome_finetuner_default_params(&p));
        return p;
    }

    /// <summary>Values trained (adapters, or every weight).</summary>
    public long TrainedParameters => Info.TrainedParams;
    /// <summary>AdamW's state in bytes (its moments of every updated tensor).</summary>
    public long OptimizerStateBytes => Info.OptimizerStateBytes;

    private MomeFinetunerInfo Info => _handle.Use(t =>
    {
        MomeFinetunerInfo info;
        Status.Check(NativeMethods.mome_finetuner_get_info(t, &info));
        return info;
    });

    /// <summary>Trains until every fact is exact or the epoch budget ends; once per fine-tuner.</summary>
    public FineTuningResult Tune(IReadOnlyList<Fact> facts, IProgress<TuningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.Count == 0) throw new ArgumentException("no facts to tune on", nameof(facts));
        if (_tuned) throw new InvalidOperationException("this fine-tuner has already tuned its facts: make a new one");
        _tuned = true;
        AddFacts(facts.Select(Encoder.Encode).ToList());
        var watch = Stopwatch.StartNew();
        var curve = new List<double>();
        long steps = 0;
        var epoch = 0;
        int exact = 0;
        double loss = 0;
        while (epoch < _options.Epochs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            MomeFinetunerStepResult step;
            using (NativeAbort.Scope(cancellationToken))
                step = Step();
            steps++;
            if (step.FirstFact == 0) (exact, loss) = (0, 0);
            exact += step.NExact;
            loss += step.LossSum;
            if (step.EpochDone == 0) continue;
            epoch++;
            curve.Add((double)exact / facts.Count);
            progress?.Report(new TuningProgress(epoch, _options.Epochs, loss / facts.Count, exact, facts.Count,
                steps * (double)_options.BatchSize / Math.Max(watch.Elapsed.TotalSeconds, 1e-9), watch.Elapsed, null) { Position = facts.Count });
            if (exact == facts.Count) break;
        }
        return new FineTuningResult(epoch, curve.Count == 0 ? 0 : curve[^1], watch.Elapsed)
        {
            Steps = steps, Updates = Info.Updates, RecallCurve = curve,
        };
    }

    /// <summary>Which facts greedy decoding gets exactly with the trained weights.</summary>
    public bool[] Evaluate() => _handle.Use(t =>
    {
        var flags = new byte[Info.NFacts];
        int exact;
        fixed (byte* f = flags)
            Status.Check(NativeMethods.mome_finetuner_evaluate(t, f, &exact));
        return flags.Select(b => b != 0).ToArray();
    });

    /// <summary>The logits [tokens x vocab] of every position of one sequence with the trained weights.</summary>
    public float[] Logits(int[] tokens, int vocabSize) => _handle.Use(t =>
    {
        var logits = new float[(long)tokens.Length * vocabSize];
        fixed (int* tk = tokens)
        fixed (float* l = logits)
            Status.Check(NativeMethods.mome_finetuner_logits(t, tk, tokens.Length, l));
        return logits;
    });

    private void AddFacts(IReadOnlyList<(int[] Tokens, int AnswerStart)> facts)
    {
        _handle.Use(t =>
        {
            FactsAbi.Add(t, facts, &NativeMethods.mome_finetuner_add_facts);
            return 0;
        });
    }

    private MomeFinetunerStepResult Step() => _handle.Use(t =>
    {
        var r = new MomeFinetunerStepResult { StructSize = (uint)sizeof(MomeFinetunerStepResult) };
        Status.Check(NativeMethods.mome_finetuner_step(t, &r));
        return r;
    });

    public void Dispose() => _handle.Dispose();
}
