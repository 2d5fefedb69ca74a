using System.Diagnostics;

namespace Mome.Cli.Versus;

/// <summary>One training run of one method at one learning rate, measured.</summary>
public sealed record VersusRun(string Method, float LearningRate)
{
    public double ExactRecall { get; init; }
    public int Epochs { get; init; }
    public long Steps { get; init; }
    public double WallSeconds { get; init; }
    public double Flops { get; init; }
    public long TrainedParams { get; init; }
    public long OptimizerStateBytes { get; init; }
    public double PeakRssMb { get; init; }
    public double InterferenceKl { get; init; }
    /// <summary>Exact recall measured in each epoch, and the FLOPs spent by its end.</summary>
    public IReadOnlyList<double> RecallCurve { get; init; } = [];
    public IReadOnlyList<double> FlopsCurve { get; init; } = [];
}

/// <summary>What every method of `mome bench versus` shares: the model, the facts rendered
/// one way (memory tuning's prompt), the unrelated prompts and the budget.</summary>
public sealed record VersusSetup(MomeModel Model, IReadOnlyList<Fact> Facts, IReadOnlyList<string> Unrelated, int BudgetEpochs, int BatchSize,
    int Threads, int LoraRank, long? Experts);

/// <summary>
/// Runs memory tuning, LoRA fine-tuning and full fine-tuning on the same facts. Each method
/// stops at 100% exact recall or the epoch budget. Recall per epoch is counted as the tuners
/// count it (each fact checked in its step, before that step's update). FLOPs per epoch: the
/// forward of every fact, the backward of the facts not yet exact (<see cref="TrainingFlops"/>).
/// Peak RSS is the process's high-water mark during the run (reset before it through
/// /proc/self/clear_refs), which includes the model and whatever earlier runs left mapped.
/// </summary>
public static class VersusRunner
{
    public static VersusRun Memory(VersusSetup s, float lr, Action<string>? log = null)
    {
        ResetPeakRss();
        var flops = new TrainingFlops(s.Model.Config);
        using var bank = MemoryBank.Create(s.Model, Commands.TuningCommands.BankFor(s.Model, s.Experts));
        var o = bank.Options;
        var options = new TuningOptions { Epochs = s.BudgetEpochs, LearningRate = lr, BatchSize = s.BatchSize, Threads = s.Threads };
        var tuner = new MemoryTuner(bank, options);
        var encoded = s.Facts.Select(tuner.Encode).ToList();
        var above = (int)s.Model.Config.LayerCount - o.Layers[0] - 1;
        // Each step: the blocks above the memory layer, the experts and the head; the frozen
        // blocks up to the memory layer and the route once per fact (cached afterwards).
        double Forward((int[] Tokens, int AnswerStart) f) => flops.BlocksForward(f.Tokens.Length, above)
            + flops.ExpertsForward(f.Tokens.Length, o.TopK, o.Rank) + flops.HeadForward(f.Tokens.Length - f.AnswerStart);
        double Backward((int[] Tokens, int AnswerStart) f) => flops.BlocksBackward(f.Tokens.Length, above, weights: false)
            + flops.ExpertsBackward(f.Tokens.Length, o.TopK, o.Rank) + flops.HeadBackward(f.Tokens.Length - f.AnswerStart, weights: false);
        var once = encoded.Sum(f => flops.BlocksForward(f.Tokens.Length, o.Layers[0] + 1)
            + flops.Route(o.Experts, o.KeyDim, o.Router == RouterKind.Product));
        var curve = new List<double>();
        var watch = Stopwatch.StartNew();
        var result = tuner.TuneAsync(s.Facts, new InlineProgress<TuningProgress>(p =>
        {
            if (p.Position == p.Total && !p.RouterPhase) curve.Add(p.Recall);
        })).GetAwaiter().GetResult();
        var wall = watch.Elapsed.TotalSeconds;
        var eval = MemoryEvaluator.Evaluate(bank, s.Facts, s.Unrelated, options);
        log?.Invoke($"memory lr {lr}: recall {eval.ExactRecall:P1} after {result.Epochs} epochs, {wall:F1} s");
        var touched = result.TouchedExperts;
        var curveFlops = Cumulative(once, curve, encoded, Forward, Backward);
        return new VersusRun("memory", lr)
        {
            ExactRecall = eval.ExactRecall, Epochs = result.Epochs, Steps = (long)result.Epochs * Batches(s), WallSeconds = wall,
            TrainedParams = touched * 2 * o.Rank * s.Model.Config.EmbeddingLength, OptimizerStateBytes = result.OptimizerStateBytes,
            PeakRssMb = PeakRssMb(), InterferenceKl = eval.InterferenceKl, RecallCurve = curve,
            FlopsCurve = curveFlops, Flops = curveFlops.LastOrDefault(once),
        };
    }

    public static VersusRun FineTune(VersusSetup s, FineTuningMode mode, float lr, Action<string>? log = null)
    {
        ResetPeakRss();
        var c = s.Model.Config;
        var flops = new TrainingFlops(c);
        var blocks = (int)c.LayerCount;
        var full = mode == FineTuningMode.Full;
        var options = new FineTuningOptions { Mode = mode, Rank = s.LoraRank, Alpha = 2 * s.LoraRank, LearningRate = lr, Epochs = s.BudgetEpochs, BatchSize = s.BatchSize, Threads = s.Threads };
        using var tuner = new FineTuner(s.Model, options);
        var encoded = s.Facts.Select(tuner.Encoder.Encode).ToList();
        double Forward((int[] Tokens, int AnswerStart) f) => flops.BlocksForward(f.Tokens.Length, blocks)
            + (full ? 0 : flops.AdaptersForward(f.Tokens.Length, s.LoraRank, blocks)) + flops.HeadForward(f.Tokens.Length - f.AnswerStart);
        double Backward((int[] Tokens, int AnswerStart) f) => flops.BlocksBackward(f.Tokens.Length, blocks, weights: full)
            + (full ? 0 : flops.AdaptersBackward(f.Tokens.Length, s.LoraRank, blocks)) + flops.HeadBackward(f.Tokens.Length - f.AnswerStart, weights: full);
        var watch = Stopwatch.StartNew();
        var result = tuner.Tune(s.Facts);
        var wall = watch.Elapsed.TotalSeconds;
        var exact = tuner.Evaluate().Count(e => e);
        using var plain = new MomeSession(s.Model, new SessionOptions { Threads = s.Threads });
        var vocab = plain.VocabSize;
        var locality = MemoryEvaluator.CompareLogits(tokens =>
        {
            plain.Clear();
            return plain.Evaluate(tokens, allLogits: true);
        }, tokens => tuner.Logits(tokens, vocab), vocab, s.Unrelated.Select(p => tuner.Encoder.Tokenizer.Encode(p)));
        var name = full ? "full" : "lora";
        log?.Invoke($"{name} lr {lr}: recall {(double)exact / s.Facts.Count:P1} after {result.Epochs} epochs, {wall:F1} s");
        var curveFlops = Cumulative(0, result.RecallCurve, encoded, Forward, Backward);
        return new VersusRun(name, lr)
        {
            ExactRecall = (double)exact / s.Facts.Count, Epochs = result.Epochs, Steps = result.Steps, WallSeconds = wall,
            TrainedParams = tuner.TrainedParameters, OptimizerStateBytes = tuner.OptimizerStateBytes, PeakRssMb = PeakRssMb(),
            InterferenceKl = locality.MeanKl, RecallCurve = result.RecallCurve, FlopsCurve = curveFlops, Flops = curveFlops.LastOrDefault(0),
        };
    }

    /// <summary>The run of the grid that recalls most, then in the fewest epochs, then the fastest.</summary>
    public static VersusRun Best(IEnumerable<VersusRun> grid) =>
        grid.OrderByDescending(r => r.ExactRecall).ThenBy(r => r.Epochs).ThenBy(r => r.WallSeconds).First();

    private static int Batches(VersusSetup s) => (s.Facts.Count + s.BatchSize - 1) / s.BatchSize;

    // FLOPs by the end of each epoch: every fact forward, the facts not exact in it backward
    // (the mean fact's backward times their count).
    private static List<double> Cumulative(double start, IReadOnlyList<double> recall, List<(int[] Tokens, int AnswerStart)> facts,
        Func<(int[] Tokens, int AnswerStart), double> forward, Func<(int[] Tokens, int AnswerStart), double> backward)
    {
        var all = facts.Sum(forward);
        var meanBackward = facts.Average(backward);
        var sum = start;
        var curve = new List<double>();
        foreach (var r in recall)
        {
            sum += all + meanBackward * Math.Round((1 - r) * facts.Count);
            curve.Add(sum);
        }
        return curve;
    }

    // Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    private static void ResetPeakRss()
    {
        GC.Collect();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static double PeakRssMb()
    {
        foreach (var line in File.Exists("/proc/self/status") ? File.ReadLines("/proc/self/status") : [])
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return Math.Round(double.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0, 1);
        using var self = Process.GetCurrentProcess();
        return Math.Round(self.PeakWorkingSet64 / 1048576.0, 1);
    }
}
