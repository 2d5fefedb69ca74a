using System.Diagnostics;
using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>How the learning rate moves over the epoch budget (after any warm-up).</summary>
public enum LearningRateSchedule
{
    Constant,
    /// <summary>Half a cosine from the rate down to <see cref="TuningOptions.FinalLearningRateRatio"/> of it.</summary>
    Cosine,
    /// <summary>A straight line from the rate down to <see cref="TuningOptions.FinalLearningRateRatio"/> of it.</summary>
    Linear,
}

/// <summary>Options of memory tuning.</summary>
public sealed record TuningOptions
{
    /// <summary>The prompt a question is asked with ({question} is replaced); the answer and
    /// the end-of-sequence token follow it.</summary>
    public string PromptTemplate { get; init; } = "Q: {question}\nA:";
    public int Epochs { get; init; } = 40;
    public float LearningRate { get; init; } = 0.3f;
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Constant;
    /// <summary>Updates over which the rate ramps up linearly from 0 (0: none).</summary>
    public int WarmupSteps { get; init; }
    public float FinalLearningRateRatio { get; init; } = 0.1f;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public float WeightDecay { get; init; }
    /// <summary>Optional phase 0: the first RouterEpochs epochs also train W_q and the keys
    /// (so that similar questions pick similar experts); then the router is frozen and each
    /// fact's route is computed once and cached.</summary>
    public int RouterEpochs { get; init; }
    public float RouterLearningRate { get; init; } = 0.001f;
    public int Threads { get; init; }
    /// <summary>Memory for keeping each fact's frozen-layer outputs (the memory layer's input
    /// and the residual stream after its block) between epochs, so that only the layers above
    /// the memory layer run again; facts past the budget recompute them.</summary>
    public long ActivationCacheBytes { get; init; } = 1L << 30;
    /// <summary>Where steps run: the CPU (default), the CPU reference loops, or a CUDA device
    /// (libmome_cuda; routes are made on the host; router epochs need the CPU).</summary>
    public DeviceBackend Backend { get; init; } = DeviceBackend.Cpu;
    public int Device { get; init; }
    /// <summary>Facts per step, packed into one batch (one sequence each); null: the native
    /// default (16). Router epochs step one fact at a time.</summary>
    public int? BatchSize { get; init; }
    public TuningOptimizer Optimizer { get; init; } = TuningOptimizer.AdamW;
    public float Epsilon { get; init; } = 1e-8f;
    /// <summary>Where the bank is checkpointed (the native tuner's state goes to
    /// "&lt;path&gt;.state", see mome_tuner_checkpoint); null: no checkpoints.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Least time between checkpoints (taken between steps); one is always written
    /// when tuning ends. Zero: after every step.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Continue from the checkpoint at CheckpointPath: the bank given to the tuner must
    /// be the one loaded from there. Its state file restores the position and the optimiser.</summary>
    public bool Resume { get; init; }
    /// <summary>The locality gate (<see cref="MemoryGate"/>): null (default) puts the facts'
    /// signatures into the gate when memorisation starts and calibrates its threshold from
    /// negatives (<see cref="GateCalibrator"/>); a value in [-1, 1] fixes the threshold;
    /// <see cref="MemoryGate.Off"/> tunes without a gate (every route applies everywhere).</summary>
    public float? GateThreshold { get; init; }
    /// <summary>Where a calibrated threshold sits between the closest negative's evidence (0) and
    /// a memorised question's (1).</summary>
    public float GateMargin { get; init; } = 0.5f;
    /// <summary>Text the bank must not affect, measured besides the generated negatives.</summary>
    public IReadOnlyList<string> Negatives { get; init; } = [];
    /// <summary>Near-miss questions generated per fact as negatives.</summary>
    public int NearMissesPerFact { get; init; } = 2;
    /// <summary>Texts sampled from the base model as negatives.</summary>
    public int ModelSampleNegatives { get; init; } = 8;
    /// <summary>Ridge of the routing whitening of a new bank's first tuning (banks that route per
    /// question), relative to the questions' mean variance per dimension
    /// (<see cref="RoutingWhitening"/>); 0: no whitening.</summary>
    public double WhiteningRidge { get; init; } = 1e-3;
}

/// <summary>The optimiser of the experts: AdamW (2 floats of state per trained value) or an
/// Adafactor-style factored second moment without first moment (rank + n_embd floats per
/// expert table: for banks of millions of experts).</summary>
public enum TuningOptimizer { AdamW, Adafactor }

/// <summary>Where tuning stands: reported after every epoch and a few times a second within one.</summary>
public sealed record TuningProgress(int Epoch, int Epochs, double Loss, int Memorised, int Total, double FactsPerSecond,
    TimeSpan Elapsed, TimeSpan? Remaining)
{
    public double Recall => Total == 0 ? 0 : (double)Memorised / Total;
    /// <summary>Facts done in this epoch (Total when the epoch is complete).</summary>
    public int Position { get; init; }
    public bool RouterPhase { get; init; }
    public double LearningRate { get; init; }
    /// <summary>A one-off message, such as where a resumed run continues.</summary>
    public string? Note { get; init; }
}

/// <summary>The outcome of <see cref="MemoryTuner.TuneAsync"/>.</summary>
public sealed record TuningResult(int Epochs, double Recall, double Loss, TimeSpan Elapsed)
{
    /// <summary>The locality gate's calibration (null when the threshold was given or the gate is off).</summary>
    public GateCalibration? Gate { get; init; }
    /// <summary>Experts the optimiser holds state for, its bytes per expert and in all.</summary>
    public long TouchedExperts { get; init; }
    public long StateBytesPerExpert { get; init; }
    public long OptimizerStateBytes { get; init; }
    /// <summary>Facts stepped per second of stepping (every epoch's facts over this run's time in
    /// steps and checkpoints; the one-off gate calibration, <see cref="GateTime"/>, left out).</summary>
    public double FactsPerSecond { get; init; }
    /// <summary>Time spent calibrating the locality gate (negatives' evidence) in this run.</summary>
    public TimeSpan GateTime { get; init; }
}

/// <summary>
/// Memory tuning: trains only the experts each fact routes to until greedy decoding of every
/// answer is exact or the epoch budget ends. The optimiser, the batched steps, the route and
/// activation caches and the checkpoints are the native tuner's (mome.h, "The tuner"); this
/// class drives it: the prompt, centring and whitening of a new bank's routing, the locality
/// gate, progress, cancellation and when to checkpoint. A fact whose answer is already exact
/// is not updated in that epoch, and every fact is re-checked each epoch. A bank may have
/// several memory layers, the lowest in slot 0: every layer's routed experts learn (the upper
/// ones route live from their own inputs); centring and whitening act on slot 0, and such a
/// bank has no locality gate (it is calibrated for one-layer banks).
/// </summary>
public sealed class MemoryTuner
{
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(250);
    private readonly MemoryBank _bank;
    private readonly TuningOptions _options;
    private readonly MomeTokenizer _tokenizer;
    private readonly BankRouter _router;

    public MemoryTuner(MemoryBank bank, TuningOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bank);
        _bank = bank;
        _options = options ?? new TuningOptions();
        if (bank.Options.Layers.Skip(1).Any(layer => layer < bank.Options.Layers[0]))
            throw new ArgumentException($"a bank with several memory layers is tuned with its lowest layer first (slot 0: the gate, centring and " +
                $"whitening act on it); this one's layers are {string.Join(", ", bank.Options.Layers)}", nameof(bank));
        if (bank.Options.Layers.Count > 1 && _options.RouterEpochs > 0)
            throw new ArgumentException("the router phase trains the router of a bank with one memory layer; give RouterEpochs = 0", nameof(options));
        if (bank.Options.Layers.Count > 1 && _options.GateThreshold is float threshold && threshold > -1)
            throw new ArgumentException("the locality gate is made for banks with one memory layer; a bank with several is tuned ungated (gate auto or off)", nameof(options));
        if (bank.Options.Routing != RoutingMode.Sequence && _options.RouterEpochs > 0)
            throw new ArgumentException("the router phase trains banks that route per sequence (question); this one routes per token", nameof(options));
        if (_options.Resume && _options.CheckpointPath is null)
            throw new ArgumentException("resuming needs the checkpoint path the bank was loaded from", nameof(options));
        if (!_options.PromptTemplate.Contains(BankPromptFile.QuestionMarker, StringComparison.Ordinal))
            throw new ArgumentException($"the prompt template '{_options.PromptTemplate}' has no {BankPromptFile.QuestionMarker} to put the question in", nameof(options));
        if (_options.BatchSize is < 1)
            throw new ArgumentException($"the batch size is {_options.BatchSize}; it must be at least 1", nameof(options));
        _tokenizer = MomeTokenizer.FromModel(bank.Model);
        _router = bank.Router(0);
    }

    /// <summary>Where the tuner's state is kept beside a checkpointed bank.</summary>
    public static string StatePath(string bankPath) => bankPath + ".state";

    public MomeTokenizer Tokenizer => _tokenizer;

    /// <summary>The tokens a fact is trained on and its answer's first index.</summary>
    public (int[] Tokens, int AnswerStart) Encode(Fact fact) => new FactEncoder(_tokenizer, _options.PromptTemplate).Encode(fact);

    public string PromptOf(string question) => new FactEncoder(_tokenizer, _options.PromptTemplate).PromptOf(question);

    /// <summary>Tunes until every fact is recalled or the epoch budget ends. Cancelling stops
    /// between steps, or inside one through the native abort callback (that step changes
    /// nothing), and writes nothing: the last checkpoint stays as it was.</summary>
    public Task<TuningResult> TuneAsync(IReadOnlyList<Fact> facts, IProgress<TuningProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Tune(facts, progress, cancellationToken), cancellationToken);

    private TuningResult Tune(IReadOnlyList<Fact> facts, IProgress<TuningProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(facts);
        if (facts.Count == 0) throw new ArgumentException("no facts to tune on", nameof(facts));
        var encoded = facts.Select(Encode).ToList();
        _bank.PromptTemplate = _options.PromptTemplate;
        var context = _bank.Model.Config.ContextLength;
        for (var i = 0; i < encoded.Count; i++)
            if (encoded[i].Tokens.Length > context)
                throw new ArgumentException($"fact {i + 1} is {encoded[i].Tokens.Length} tokens long; the model's context holds {context}");
        using var tuner = NativeTuner.Create(_bank, _options);
        tuner.AddFacts(encoded);
        var earlier = TimeSpan.Zero;
        string? note = null;
        var resumed = false;
        if (_options.Resume) (resumed, earlier, note) = Restore(tuner);
        if (!resumed) CentreRouting(encoded);
        var start = tuner.Info;
        if (start.Epoch >= _options.Epochs)
            throw new ArgumentException($"the checkpoint has already run {start.Epoch} epochs, the whole budget of {_options.Epochs}: give a larger epoch budget to continue");
        if (note is not null) progress?.Report(new TuningProgress(start.Epoch + 1, _options.Epochs, double.NaN, 0, encoded.Count, 0, TimeSpan.Zero, null) { Note = note });
        if (_options.CheckpointPath is { } prompted) BankPromptFile.Write(Path.GetFullPath(prompted), _options.PromptTemplate);

        var watch = Stopwatch.StartNew();
        var lastCheckpoint = watch.Elapsed;
        var lastReport = watch.Elapsed;
        long factsDone = 0;
        var epoch = start.Epoch;
        var loss = double.NaN;
        var memorised = 0;
        var epochLoss = 0.0;
        var epochExact = 0;
        var epochFacts = 0;
        GateCalibration? gate = null;
        var gateReady = false;
        var gateTime = TimeSpan.Zero;
        if (epoch < _options.RouterEpochs) _bank.SetGateThreshold(0, MemoryGate.Off); // W_q still moves
        while (epoch < _options.Epochs)
        {
            var routerPhase = epoch < _options.RouterEpochs;
            if (!routerPhase && !gateReady)
            {
                var calibrating = watch.Elapsed;
                gate = PrepareGate(facts, encoded);
                gateTime += watch.Elapsed - calibrating;
                gateReady = true;
            }
            cancellationToken.ThrowIfCancellationRequested();
            MomeTunerStepResult step;
            // The native step polls the token per layer; checkpoints below are never cut short.
            using (NativeAbort.Scope(cancellationToken))
                step = tuner.Step();
            var epochDone = step.EpochDone != 0;
            factsDone += step.NFacts;
            if (step.FirstFact == 0) (epochLoss, epochExact, epochFacts) = (0, 0, 0);
            epochLoss += step.LossSum;
            epochExact += step.NExact;
            epochFacts += step.NFacts;
            var position = step.FirstFact + step.NFacts;
            if (epochDone)
            {
                loss = step.EpochLoss;
                memorised = step.EpochExact;
            }
            if (_options.CheckpointPath is { } path && !epochDone && watch.Elapsed - lastCheckpoint >= _options.CheckpointInterval)
            {
                tuner.Checkpoint(Path.GetFullPath(path), (earlier + watch.Elapsed).TotalSeconds);
                lastCheckpoint = watch.Elapsed;
            }
            if (progress is not null && (epochDone || watch.Elapsed - lastReport >= ReportEvery))
            {
                lastReport = watch.Elapsed;
                var perSecond = factsDone / Math.Max(watch.Elapsed.TotalSeconds, 1e-9);
                var left = (long)(_options.Epochs - epoch) * encoded.Count - position;
                var shownExact = epochDone ? step.EpochExact : epochExact;
                var shownLoss = epochDone ? step.EpochLoss : epochLoss / epochFacts;
                progress.Report(new TuningProgress(epoch + 1, _options.Epochs, shownLoss, shownExact, encoded.Count, perSecond,
                    earlier + watch.Elapsed, epochDone && shownExact == encoded.Count && !routerPhase ? TimeSpan.Zero : TimeSpan.FromSeconds(left / perSecond))
                {
                    Position = position, RouterPhase = routerPhase, LearningRate = step.LearningRate,
                });
            }
            if (!epochDone) continue;
            epoch++;
            if (memorised == encoded.Count && epoch >= _options.RouterEpochs) break;
        }
        if (_options.CheckpointPath is { } final)
            tuner.Checkpoint(Path.GetFullPath(final), (earlier + watch.Elapsed).TotalSeconds);
        var end = tuner.Info;
        return new TuningResult(epoch, (double)memorised / encoded.Count, loss, earlier + watch.Elapsed)
        {
            Gate = gate, TouchedExperts = end.TouchedExperts, StateBytesPerExpert = end.StateBytesPerExpert,
            OptimizerStateBytes = end.StateBytes, GateTime = gateTime,
            FactsPerSecond = factsDone / Math.Max((watch.Elapsed - gateTime).TotalSeconds, 1e-9),
        };
    }

    // The facts' signatures into the gate and its threshold, once the router is frozen (the
    // signatures are routing queries).
    private GateCalibration? PrepareGate(IReadOnlyList<Fact> facts, List<(int[] Tokens, int AnswerStart)> encoded)
    {
        switch (_options.GateThreshold)
        {
            case null when _bank.Options.Layers.Count > 1:  // the gate's signatures are one layer's (see the constructor)
                _bank.SetGateThreshold(0, MemoryGate.Off);
                return null;
            case null:
                return GateCalibrator.Calibrate(_bank, this, facts, _options);
            case float off when off <= -1:
                _bank.SetGateThreshold(0, MemoryGate.Off);
                return null;
            case float fixedThreshold:
                foreach (var (tokens, answerStart) in encoded) _bank.AddGateFact(tokens, answerStart, _options.Threads);
                _bank.SetGateThreshold(0, fixedThreshold);
                return null;
        }
    }

    // The position and optimiser of the checkpoint the bank was loaded from; when there is
    // none to continue, a note saying why (and the tuner starts afresh).
    private (bool Resumed, TimeSpan Elapsed, string Note) Restore(NativeTuner tuner)
    {
        var path = Path.GetFullPath(_options.CheckpointPath!);
        var (outcome, elapsed) = tuner.Resume(path);
        var info = tuner.Info;
        return outcome switch
        {
            MomeResumeOutcome.Resumed => (true, TimeSpan.FromSeconds(elapsed),
                $"resuming at epoch {info.Epoch + 1}, fact {info.Position + 1}, after {info.Updates} updates"),
            MomeResumeOutcome.NoState => (false, TimeSpan.Zero, $"no tuning state at {StatePath(path)}: tuning the bank as saved with a fresh optimiser"),
            MomeResumeOutcome.OtherFacts => (false, TimeSpan.Zero,
                "the facts (or the prompt template) differ from the checkpoint's: tuning the bank as saved with a fresh optimiser"),
            _ => (false, TimeSpan.Zero, $"the tuning state does not belong to the bank at {path}: tuning the bank as saved with a fresh optimiser"),
        };
    }

    // A fresh bank routes from raw inputs, which questions differing in a few words share
    // almost entirely; centring on the facts' mean question input lets such questions reach
    // different experts. Only a bank that was never centred is centred (re-tuning keeps
    // earlier facts' routes).
    // Whitening (RoutingWhitening) then spreads the questions of one template over the experts.
    private void CentreRouting(List<(int[] Tokens, int AnswerStart)> encoded)
    {
        if (_bank.GetCentre(0).Any(v => v != 0)) return;
        var dim = (int)_bank.Model.Config.EmbeddingLength;
        var means = encoded.Select(e => _bank.QuestionMean(e.Tokens.AsSpan(0, e.AnswerStart), _options.Threads)).ToList();
        var centre = new double[dim];
        foreach (var mean in means)
            for (var i = 0; i < dim; i++) centre[i] += mean[i] / means.Count;
        _bank.SetCentre(0, centre.Select(v => (float)v).ToArray());
        // Per-token queries are single tokens' inputs, not question means: whitening by the
        // questions' covariance misroutes them (30 facts per token: 86.7% recall without, 43.3% with).
        if (_options.WhiteningRidge <= 0 || _bank.Options.Routing != RoutingMode.Sequence) return;
        var centred = means.Select(m => m.Select((v, i) => v - centre[i]).ToArray()).ToList();
        _router.SetQueryProjection(RoutingWhitening.Whiten(_router.GetQueryProjection(), (int)_bank.Options.KeyDim, dim, centred, _options.WhiteningRidge));
    }
}

/// <summary>An IProgress that reports on the tuning thread itself, so a handler may safely
/// use the bank (for example, to save a checkpoint) between epochs.</summary>
public sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
