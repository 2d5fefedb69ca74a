using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>The native tuner (mome.h, "The tuner") over a bank: facts, steps, evaluation and
/// checkpoints. <see cref="MemoryTuner"/> drives it.</summary>
internal sealed unsafe class NativeTuner : IDisposable
{
    private readonly SafeTunerHandle _handle;

    private NativeTuner(SafeTunerHandle handle) => _handle = handle;

    public static NativeTuner Create(MemoryBank bank, TuningOptions options)
    {
        var p = Defaults();
        p.Optimizer = options.Optimizer == TuningOptimizer.Adafactor ? MomeOptimizer.Adafactor : MomeOptimizer.Adamw;
        p.LearningRate = options.LearningRate;
        p.Schedule = options.Schedule switch
        {
            LearningRateSchedule.Cosine => MomeLrSchedule.Cosine,
            LearningRateSchedule.Linear => MomeLrSchedule.Linear,
            _ => MomeLrSchedule.Constant,
        };
        p.WarmupSteps = options.WarmupSteps;
        p.FinalLrRatio = options.FinalLearningRateRatio;
        p.Beta1 = options.Beta1;
        p.Beta2 = options.Beta2;
        p.Epsilon = options.Epsilon;
        p.WeightDecay = options.WeightDecay;
        p.Epochs = options.Epochs;
        p.RouterEpochs = options.RouterEpochs;
        p.RouterLearningRate = options.RouterLearningRate;
        if (options.BatchSize is { } batch) p.BatchSize = batch;
        p.ActivationCacheBytes = options.ActivationCacheBytes;
        p.NThreads = options.Threads;
        p.Backend = (MomeBackend)(int)options.Backend;
        p.Device = options.Device;
        var handle = SafeTunerHandle.Create(bank.Handle, b =>
        {
            IntPtr tuner;
            var given = p;
            Status.Check(NativeMethods.mome_tuner_create(b, &given, &tuner));
            return tuner;
        });
        return new NativeTuner(handle);
    }

    private static MomeTunerParams Defaults()
    {
        var p = new MomeTunerParams { StructSize = (uint)sizeof(MomeTunerParams) };
        Status.Check(NativeMethods.mome_tuner_default_params(&p));
        return p;
    }

    public void AddFacts(IReadOnlyList<(int[] Tokens, int AnswerStart)> facts)
    {
        _handle.Use(t =>
        {
            FactsAbi.Add(t, facts, &NativeMethods.mome_tuner_add_facts);
            return 0;
        });
    }

    /// <summary>One step: the next batch of facts (polls the abort callback per layer).</summary>
    public MomeTunerStepResult Step() => _handle.Use(t =>
    {
        var r = new MomeTunerStepResult { StructSize = (uint)sizeof(MomeTunerStepResult) };
        Status.Check(NativeMethods.mome_tuner_step(t, &r));
        return r;
    });

    public MomeTunerInfo Info => _handle.Use(t =>
    {
        MomeTunerInfo info;
        Status.Check(NativeMethods.mome_tuner_get_info(t, &info));
        return info;
    });

    /// <summary>Which facts greedy decoding gets exactly, as the bank is now.</summary>
    public bool[] Evaluate() => _handle.Use(t =>
    {
        var flags = new byte[Info.NFacts];
        int exact;
        fixed (byte* f = flags)
            Status.Check(NativeMethods.mome_tuner_evaluate(t, f, &exact));
        return flags.Select(b => b != 0).ToArray();
    });

    public void Checkpoint(string bankPath, double elapsedSeconds)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(bankPath + "\0");
        _handle.Use(t =>
        {
            fixed (byte* p = utf8)
                Status.Check(NativeMethods.mome_tuner_checkpoint(t, p, elapsedSeconds));
            return 0;
        });
    }

    public (MomeResumeOutcome Outcome, double ElapsedSeconds) Resume(string bankPath)
    {
        var utf8 = System.Text.Encoding.UTF8.GetBytes(bankPath + "\0");
        return _handle.Use(t =>
        {
            MomeResumeOutcome outcome;
            double elapsed;
            fixed (byte* p = utf8)
                Status.Check(NativeMethods.mome_tuner_resume(t, p, &outcome, &elapsed));
            return (outcome, elapsed);
        });
    }

    public void Dispose() => _handle.Dispose();
}
