using System.Diagnostics;
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
    public float LearningRate { get; init; } = 0.1f;
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
    /// <summary>Run each step's forward and backward on this CUDA device (libmome_cuda; the
    /// route and the optimiser stay on the host; router-phase epochs run on the CPU).</summary>
    public int? CudaDevice { get; init; }
    /// <summary>Where the bank is checkpointed (its optimiser state goes to "&lt;path&gt;.state");
    /// null: no checkpoints.</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Least time between checkpoints (taken between facts); one is always written
    /// when tuning ends. Zero: after every fact.</summary>
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
}

/// <summary>
/// Memory tuning: trains only the experts each fact routes to (AdamW with state kept for
/// touched experts only) until greedy decoding of every answer is exact or the epoch budget
/// ends. A fact whose answer is already exact is not updated in that epoch, and every fact is
/// re-checked each epoch. The bank must have one memory layer.
/// </summary>
public sealed class MemoryTuner
{
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(250);
    private readonly MemoryBank _bank;
    private readonly TuningOptions _options;
    private readonly MomeTokenizer _tokenizer;
    private readonly BankRouter _router;
    private Dictionary<long, float[][]> _experts = [];
    private Dictionary<long, float[][]> _keyRows = [];
    private float[][]? _wq;
    private long _step;

    public MemoryTuner(MemoryBank bank, TuningOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bank);
        _bank = bank;
        _options = options ?? new TuningOptions();
        if (bank.Options.Layers.Count != 1)
            throw new ArgumentException($"tuning needs a bank with one memory layer; this one has {bank.Options.Layers.Count}", nameof(bank));
        if (bank.Options.Routing != RoutingMode.Sequence && _options.RouterEpochs > 0)
            throw new ArgumentException("the router phase trains banks that route per sequence (question); this one routes per token", nameof(options));
        if (_options.Resume && _options.CheckpointPath is null)
            throw new ArgumentException("resuming needs the checkpoint path the bank was loaded from", nameof(options));
        if (!_options.PromptTemplate.Contains(BankPromptFile.QuestionMarker, StringComparison.Ordinal))
            throw new ArgumentException($"the prompt template '{_options.PromptTemplate}' has no {BankPromptFile.QuestionMarker} to put the question in", nameof(options));
        _tokenizer = MomeTokenizer.FromModel(bank.Model);
        _router = bank.Router(0);
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

    /// <summary>Tunes until every fact is recalled or the epoch budget ends. Cancelling stops
    /// between facts and writes nothing: the last checkpoint stays as it was.</summary>
    public Task<TuningResult> TuneAsync(IReadOnlyList<Fact> facts, IProgress<TuningProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Tune(facts, progress, cancellationToken), cancellationToken);

    /// <summary>The learning rate of an update <paramref name="progress"/> (0..1) of the way
    /// through the epoch budget, after <paramref name="step"/> earlier updates.</summary>
    public static double LearningRateAt(TuningOptions options, double baseRate, long step, double progress)
    {
        var warm = options.WarmupSteps > 0 ? Math.Min(1.0, (step + 1.0) / options.WarmupSteps) : 1.0;
        var floor = options.FinalLearningRateRatio;
        var p = Math.Clamp(progress, 0, 1);
        var decay = options.Schedule switch
        {
            LearningRateSchedule.Cosine => floor + (1 - floor) * 0.5 * (1 + Math.Cos(Math.PI * p)),
            LearningRateSchedule.Linear => 1 - (1 - floor) * p,
            _ => 1.0,
        };
        return baseRate * warm * decay;
    }

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
        var factsHash = TuningCheckpoint.HashFacts(encoded.Select(e => e.Tokens.Append(e.AnswerStart).ToArray()));
        string? note = null;
        var start = _options.Resume ? Restore(factsHash, out note) : null;
        if (start is null) CentreRouting(encoded);
        var position = start ?? new TuningCheckpoint.Header(0, 0, 0, 0, 0, 0, factsHash, "");
        if (position.Epoch >= _options.Epochs)
            throw new ArgumentException($"the checkpoint has already run {position.Epoch} epochs, the whole budget of {_options.Epochs}: give a larger epoch budget to continue");
        if (note is not null) progress?.Report(new TuningProgress(position.Epoch + 1, _options.Epochs, double.NaN, 0, encoded.Count, 0, TimeSpan.Zero, null) { Note = note });

        using var device = _options.CudaDevice is { } cuda
            ? new MomeSession(_bank.Model, new SessionOptions { ContextLength = 1, Backend = DeviceBackend.Cuda, Device = cuda, Threads = _options.Threads })
            : null;
        var watch = Stopwatch.StartNew();
        var earlier = TimeSpan.FromSeconds(position.ElapsedSeconds);
        var lastCheckpoint = watch.Elapsed;
        var lastReport = watch.Elapsed;
        var routes = new (int[] Indices, float[] Weights)?[encoded.Count];
        var prefixes = new float[]?[encoded.Count];
        var cacheLeft = _options.ActivationCacheBytes;
        long factsDone = 0;
        var epoch = position.Epoch;
        var loss = double.NaN;
        var memorised = 0;
        GateCalibration? gate = null;
        var gateReady = false;
        if (epoch < _options.RouterEpochs) _bank.SetGateThreshold(0, MemoryGate.Off); // W_q still moves
        while (epoch < _options.Epochs)
        {
            var routerPhase = epoch < _options.RouterEpochs;
            if (!routerPhase && !gateReady)
            {
                gate = PrepareGate(facts, encoded);
                gateReady = true;
            }
            var first = epoch == position.Epoch ? position.Position : 0;
            var total = epoch == position.Epoch ? position.EpochLoss : 0.0;
            memorised = epoch == position.Epoch ? position.EpochMemorised : 0;
            for (var i = first; i < encoded.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var (tokens, answerStart) = encoded[i];
                var prefix = prefixes[i];
                var keep = prefix is null && cacheLeft >= PrefixBytes(tokens) ? new float[PrefixBytes(tokens) / sizeof(float)] : null;
                FactStep step;
                // The native step polls the token per layer; checkpoints below are never cut short.
                using (NativeAbort.Scope(cancellationToken))
                    step = _bank.FactBackward(tokens, answerStart, routerPhase ? null : routes[i], routerPhase, _options.Threads, prefix, keep,
                        routerPhase ? null : device);
                if (keep is not null)
                {
                    prefixes[i] = keep;
                    cacheLeft -= PrefixBytes(tokens);
                }
                if (!routerPhase) routes[i] ??= (step.Indices, step.Weights);
                total += step.Loss;
                factsDone++;
                var lr = LearningRateAt(_options, _options.LearningRate, _step, (epoch + (double)i / encoded.Count) / _options.Epochs);
                if (step.Exact) memorised++;
                else Update(step, lr, routerPhase ? LearningRateAt(_options, _options.RouterLearningRate, _step, (epoch + (double)i / encoded.Count) / _options.Epochs) : 0);
                var done = i + 1 == encoded.Count;
                if (_options.CheckpointPath is { } path && !done && watch.Elapsed - lastCheckpoint >= _options.CheckpointInterval)
                {
                    SaveCheckpoint(path, new TuningCheckpoint.Header(epoch, i + 1, _step, total, memorised, (earlier + watch.Elapsed).TotalSeconds, factsHash, ""));
                    lastCheckpoint = watch.Elapsed;
                }
                if (progress is not null && (done || watch.Elapsed - lastReport >= ReportEvery))
                {
                    lastReport = watch.Elapsed;
                    var perSecond = factsDone / Math.Max(watch.Elapsed.TotalSeconds, 1e-9);
                    var left = (long)(_options.Epochs - epoch) * encoded.Count - (i + 1);
                    progress.Report(new TuningProgress(epoch + 1, _options.Epochs, total / (i + 1), memorised, encoded.Count, perSecond,
                        earlier + watch.Elapsed, done && memorised == encoded.Count && !routerPhase ? TimeSpan.Zero : TimeSpan.FromSeconds(left / perSecond))
                    {
                        Position = i + 1, RouterPhase = routerPhase, LearningRate = lr,
                    });
                }
            }
            loss = total / encoded.Count;
            epoch++;
            if (memorised == encoded.Count && epoch >= _options.RouterEpochs) break;
        }
        if (_options.CheckpointPath is { } final)
            SaveCheckpoint(final, new TuningCheckpoint.Header(epoch, 0, _step, 0, 0, (earlier + watch.Elapsed).TotalSeconds, factsHash, ""));
        return new TuningResult(epoch, (double)memorised / encoded.Count, loss, earlier + watch.Elapsed) { Gate = gate };
    }

    // The facts' signatures into the gate and its threshold, once the router is frozen (the
    // signatures are routing queries).
    private GateCalibration? PrepareGate(IReadOnlyList<Fact> facts, List<(int[] Tokens, int AnswerStart)> encoded)
    {
        switch (_options.GateThreshold)
        {
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

    private long PrefixBytes(int[] tokens) => 2L * tokens.Length * _bank.Model.Config.EmbeddingLength * sizeof(float);

    // The bank to a side file, then the state that names it, then the bank into place: killed
    // anywhere, the bank at `path` matches the new state or the one kept before it.
    private void SaveCheckpoint(string path, TuningCheckpoint.Header position)
    {
        var next = path + ".next";
        _bank.Save(next);
        new TuningCheckpoint
        {
            Position = position with { BankHash = TuningCheckpoint.HashFile(next) },
            Experts = _experts, KeyRows = _keyRows, Wq = _wq,
        }.Save(TuningCheckpoint.StatePath(path));
        File.Move(BankPromptFile.PathOf(next), BankPromptFile.PathOf(path), overwrite: true);
        File.Move(next, path, overwrite: true);
    }

    // The position and optimiser of the checkpoint the bank was loaded from, or null (with a
    // note saying why) when there is none to continue.
    private TuningCheckpoint.Header? Restore(string factsHash, out string? note)
    {
        var path = _options.CheckpointPath!;
        var statePath = TuningCheckpoint.StatePath(path);
        if (!File.Exists(statePath))
        {
            note = $"no tuning state at {statePath}: tuning the bank as saved with a fresh optimiser";
            return null;
        }
        var bankHash = File.Exists(path) ? TuningCheckpoint.HashFile(path) : "";
        var state = Read(statePath);
        if (state.Position.BankHash != bankHash && File.Exists(TuningCheckpoint.PreviousPath(statePath)))
        {
            var previous = Read(TuningCheckpoint.PreviousPath(statePath));
            if (previous.Position.BankHash == bankHash) state = previous; // stopped before the bank's rename
        }
        if (state.Position.FactsHash != factsHash)
        {
            note = "the facts (or the prompt template) differ from the checkpoint's: tuning the bank as saved with a fresh optimiser";
            return null;
        }
        if (state.Position.BankHash != bankHash)
        {
            note = $"the tuning state does not belong to the bank at {path}: tuning the bank as saved with a fresh optimiser";
            return null;
        }
        (_experts, _keyRows, _wq, _step) = (state.Experts, state.KeyRows, state.Wq, state.Position.Step);
        note = $"resuming at epoch {state.Position.Epoch + 1}, fact {state.Position.Position + 1}, after {state.Position.Step} updates";
        return state.Position;

        TuningCheckpoint Read(string file) => TuningCheckpoint.Load(file, _bank.Options.Experts, _bank.Options.Rank * (int)_bank.Model.Config.EmbeddingLength,
            _router.KeyRows, _router.KeyRowLength, (int)(_bank.Options.KeyDim * _bank.Model.Config.EmbeddingLength));
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

    // AdamW on the routed experts only (and, in the router phase, on W_q and the route's key
    // rows); state exists for what was ever touched.
    private void Update(FactStep step, double lr, double routerLr)
    {
        _step++;
        var n = step.DA.Length / step.Indices.Length;
        var correction1 = 1 - Math.Pow(_options.Beta1, _step);
        var correction2 = 1 - Math.Pow(_options.Beta2, _step);
        for (var j = 0; j < step.ExpertCount; j++)
        {
            var expert = step.Experts[j];
            if (!_experts.TryGetValue(expert, out var state)) _experts[expert] = state = [new float[n], new float[n], new float[n], new float[n]];
            var (a, b) = _bank.GetExpert(0, expert);
            Apply(a, step.DA.AsSpan(j * n, n), state[0], state[1], lr);
            Apply(b, step.DB.AsSpan(j * n, n), state[2], state[3], lr);
            _bank.SetExpert(0, expert, a, b);
        }
        if (step.DWq is null || step.DKeys is null) return;

        var wq = _router.GetQueryProjection();
        _wq ??= [new float[wq.Length], new float[wq.Length]];
        Apply(wq, step.DWq, _wq[0], _wq[1], routerLr);
        _router.SetQueryProjection(wq);
        foreach (var (row, gradient) in KeyRowGradients(step))
        {
            if (!_keyRows.TryGetValue(row, out var state)) _keyRows[row] = state = [new float[gradient.Length], new float[gradient.Length]];
            var key = _router.GetKeyRows(row, 1);
            Apply(key, gradient, state[0], state[1], routerLr);
            _router.SetKeyRows(row, key);
        }

        void Apply(float[] p, ReadOnlySpan<float> g, float[] m, float[] v, double rate)
        {
            for (var i = 0; i < p.Length; i++)
            {
                m[i] = _options.Beta1 * m[i] + (1 - _options.Beta1) * g[i];
                v[i] = _options.Beta2 * v[i] + (1 - _options.Beta2) * g[i] * g[i];
                var update = m[i] / correction1 / (Math.Sqrt(v[i] / correction2) + 1e-8);
                p[i] = (float)(p[i] - rate * (update + _options.WeightDecay * p[i]));
            }
        }
    }

    // The route's key gradients by key row: a flat router's entry j is expert j's row; a
    // product router's halves go to the two sub-key rows (shared rows add up).
    private Dictionary<long, float[]> KeyRowGradients(FactStep step)
    {
        var keyDim = (int)_bank.Options.KeyDim;
        var rows = new Dictionary<long, float[]>();
        void Add(long row, ReadOnlySpan<float> g)
        {
            if (!rows.TryGetValue(row, out var sum)) rows[row] = sum = new float[g.Length];
            for (var i = 0; i < g.Length; i++) sum[i] += g[i];
        }
        for (var j = 0; j < step.Indices.Length; j++)
        {
            var g = step.DKeys.AsSpan(j * keyDim, keyDim);
            if (_bank.Options.Router == RouterKind.Product)
            {
                var sub = _router.SubKeys;
                Add(step.Indices[j] / sub, g[..(keyDim / 2)]);
                Add(sub + step.Indices[j] % sub, g[(keyDim / 2)..]);
            }
            else Add(step.Indices[j], g);
        }
        return rows;
    }
}

/// <summary>An IProgress that reports on the tuning thread itself, so a handler may safely
/// use the bank (for example, to save a checkpoint) between epochs.</summary>
public sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
