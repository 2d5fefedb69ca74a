using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mome.Engines;
using Mome.Ilgpu;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome tune`, `mome ask`, `mome eval`.</summary>
public static class TuningCommands
{
    /// <summary>The bank shape `mome tune` gives a new bank for a model, with any flags applied.</summary>
    public static MemoryOptions BankFor(MomeModel model, long? experts = null, int? topK = null, int? rank = null, RouterKind? router = null)
    {
        var defaults = MemoryOptions.ForTuning(model.Config);
        var n = experts ?? defaults.Experts;
        var k = topK ?? defaults.TopK;
        var side = (long)Math.Round(Math.Sqrt(n));
        // Product keys need a square number of experts with at least top-k sub-keys per half.
        var productFits = side * side == n && side >= k;
        return defaults with
        {
            Experts = n, TopK = k, Rank = rank ?? defaults.Rank, Router = router ?? (productFits ? defaults.Router : RouterKind.Flat),
        };
    }

    public static IEnumerable<Command> Create(CliIo io) => [TuneCommand(io), AskCommand(io), EvalCommand(io)];

    private static Command TuneCommand(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Description = "The base model (GGUF).", Required = true };
        var facts = new Option<FileInfo>("--facts") { Description = "Facts as JSONL: {\"question\": ..., \"answer\": ...} per line.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "The bank file to write (and checkpoint).", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue from the checkpoint at --out (bank and optimiser state) where it stopped." };
        var defaults = new TuningOptions();
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => defaults.Epochs };
        var lr = new Option<float>("--lr") { Description = "Learning rate (AdamW).", DefaultValueFactory = _ => defaults.LearningRate };
        var schedule = new Option<LearningRateSchedule>("--lr-schedule") { Description = "constant, cosine or linear (down to --lr-final of --lr over the epoch budget).", DefaultValueFactory = _ => defaults.Schedule };
        var final = new Option<float>("--lr-final") { Description = "Where cosine and linear schedules end, as a fraction of --lr.", DefaultValueFactory = _ => defaults.FinalLearningRateRatio };
        var warmup = new Option<int>("--warmup") { Description = "Updates over which the learning rate ramps up from 0.", DefaultValueFactory = _ => defaults.WarmupSteps };
        var routerEpochs = new Option<int>("--router-epochs") { Description = "Phase 0: epochs that also train the router (W_q and keys) before it is frozen.", DefaultValueFactory = _ => defaults.RouterEpochs };
        var routerLr = new Option<float>("--router-lr") { DefaultValueFactory = _ => defaults.RouterLearningRate };
        var experts = new Option<long?>("--experts") { Description = "Experts in a new bank (default: as many as fit 512 MiB, a square up to 1024²)." };
        var topK = new Option<int?>("--top-k") { Description = "Experts per question (default 32)." };
        var rank = new Option<int?>("--rank") { Description = "LoRA rank of each expert (default 4)." };
        var router = new Option<RouterKind?>("--router") { Description = "Flat (exact over all keys) or Product (two sub-key tables; needs a square --experts). Default: Product, or Flat when --experts is not a square of at least --top-k." };
        var layers = new Option<string?>("--layers") { Description = "Memory layers of a new bank: comma-separated model blocks, lowest first (default: one at ~3/4 depth). A bank with several is tuned without the locality gate." };
        var every = new Option<double>("--checkpoint-seconds") { Description = "Least seconds between checkpoints (0: after every step).", DefaultValueFactory = _ => defaults.CheckpointInterval.TotalSeconds };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 0 };
        var cuda = new Option<int?>("--cuda") { Description = "Run the tuning steps on this CUDA device (libmome_cuda)." };
        var batch = new Option<int?>("--batch") { Description = "Facts per step, run as one batch (default 16; router epochs take one)." };
        var optimizer = new Option<TuningOptimizer>("--optimizer") { Description = "adamw, or adafactor (factored second moment: far less state per expert).", DefaultValueFactory = _ => defaults.Optimizer };
        var negatives = new Option<FileInfo?>("--negatives") { Description = "Text the bank must not affect, one prompt per line (\\n is a newline): calibrates the locality gate with the generated negatives." };
        var gate = new Option<string>("--gate") { Description = "The locality gate: auto (calibrated from negatives), off, or a threshold in [-1, 1].", DefaultValueFactory = _ => "auto" };
        var gateMargin = new Option<float>("--gate-margin") { Description = "Where a calibrated threshold sits between the closest negative (0) and a memorised question (1).", DefaultValueFactory = _ => defaults.GateMargin };
        var whitening = new Option<double>("--whitening-ridge") { Description = "Ridge of the routing whitening of a new bank, relative to the questions' variance (0: none).", DefaultValueFactory = _ => defaults.WhiteningRidge };
        var command = new Command("tune", "Memorise facts: train only the experts each question routes to.")
        {
            model, facts, output, resume, epochs, lr, schedule, final, warmup, routerEpochs, routerLr, experts, topK, rank, router, layers, every, threads, cuda, batch, optimizer,
            negatives, gate, gateMargin, whitening,
        };
        command.SetAction((parse, cancellationToken) => io.GuardAsync(async () =>
        {
            var factList = FactsFile.Load(parse.GetValue(facts)!.FullName);
            using var m = MomeModel.Open(parse.GetValue(model)!.FullName);
            var path = parse.GetValue(output)!.FullName;
            var resuming = parse.GetValue(resume) && File.Exists(path);
            if (!resuming) ProbeWritable(path);
            using var bank = resuming
                ? MemoryBank.Load(m, path)
                : MemoryBank.Create(m, BankFor(m, parse.GetValue(experts), parse.GetValue(topK), parse.GetValue(rank), parse.GetValue(router)) with
                {
                    Layers = MemoryCommands.ParseLayers(parse.GetValue(layers)),
                });
            var options = new TuningOptions
            {
                Epochs = parse.GetValue(epochs), LearningRate = parse.GetValue(lr), Schedule = parse.GetValue(schedule),
                FinalLearningRateRatio = parse.GetValue(final), WarmupSteps = parse.GetValue(warmup),
                RouterEpochs = parse.GetValue(routerEpochs), RouterLearningRate = parse.GetValue(routerLr), Threads = parse.GetValue(threads),
                CheckpointPath = path, CheckpointInterval = TimeSpan.FromSeconds(parse.GetValue(every)), Resume = resuming,
                Backend = parse.GetValue(cuda) is null ? DeviceBackend.Cpu : DeviceBackend.Cuda, Device = parse.GetValue(cuda) ?? 0,
                BatchSize = parse.GetValue(batch), Optimizer = parse.GetValue(optimizer),
                Negatives = parse.GetValue(negatives) is { } n ? PromptsFile.Load(n.FullName) : [],
                GateThreshold = GateOption(parse.GetValue(gate)!), GateMargin = parse.GetValue(gateMargin),
                WhiteningRidge = parse.GetValue(whitening),
            };
            var result = await Tune(io, bank, factList, options, cancellationToken);
            io.Console.MarkupLineInterpolated(
                $"Recall [green]{result.Recall:P1}[/] after {result.Epochs} epochs ({result.Elapsed.TotalSeconds:F1} s); bank saved to [green]{path}[/].");
            if (result.Gate is { } g)
                io.Console.MarkupLineInterpolated(
                    $"Locality gate: threshold {g.Threshold:F4}; the closest negative of {g.NearMisses} near-miss questions, {g.GenericNegatives} generic texts, {g.GivenNegatives} given and {g.ModelSamples} model samples had evidence {g.ClosestNegative:F4}.");
        }));
        return command;
    }

    internal static float? GateOption(string value) => value.Trim().ToLowerInvariant() switch
    {
        "auto" => null,
        "off" => MemoryGate.Off,
        var v when float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var t) && t >= -1 && t <= 1 => t,
        _ => throw new ArgumentException($"--gate must be auto, off or a threshold in [-1, 1], not '{value}'"),
    };

    // Fails before any work when the bank cannot be written where asked.
    private static void ProbeWritable(string path)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(folder)) throw new IOException($"cannot write the bank to {path}: the folder {folder} does not exist");
        var probe = Path.Combine(folder, $".mome-probe-{Environment.ProcessId}");
        try
        {
            File.WriteAllBytes(probe, []);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write the bank to {path}: {e.Message}", e);
        }
        File.Delete(probe);
    }

    /// <summary>Tunes with a live display; the tuner checkpoints to options.CheckpointPath. Shared by `tune` and `demo`.</summary>
    public static async Task<TuningResult> Tune(CliIo io, MemoryBank bank, IReadOnlyList<Fact> facts, TuningOptions options,
        CancellationToken cancellationToken)
    {
        var tuner = new MemoryTuner(bank, options);
        TuningResult? result = null;
        try
        {
            await io.Console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var recall = ctx.AddTask("recall", maxValue: facts.Count);
                    var progress = new InlineProgress<TuningProgress>(p =>
                    {
                        if (p.Note is { } note)
                        {
                            io.Console.MarkupLineInterpolated($"[yellow]{note}[/]");
                            return;
                        }
                        recall.Value = p.Memorised;
                        recall.Description = string.Create(CultureInfo.InvariantCulture,
                            $"{(p.RouterPhase ? "router " : "")}epoch {p.Epoch}/{p.Epochs} fact {p.Position}/{p.Total}  loss {p.Loss:F3}  recall {p.Recall:P0}  {p.FactsPerSecond:F0} facts/s  lr {p.LearningRate:G3}");
                    });
                    result = await tuner.TuneAsync(facts, progress, cancellationToken);
                });
        }
        catch (OperationCanceledException) when (options.CheckpointPath is { } path)
        {
            io.Console.MarkupLineInterpolated($"[yellow]stopped[/]: the last checkpoint is at {path} (if one was written); --resume continues from it.");
            throw;
        }
        return result!;
    }
    private static Command AskCommand(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Required = true };
        var memory = new Option<FileInfo>("--memory") { Description = "The bank made by `mome tune`.", Required = true };
        var question = new Argument<string>("question");
        var command = new Command("ask", "Ask a question: greedy decoding with the memory bank.") { model, memory, question };
        var engine = new EngineOptions();
        engine.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var (modelPath, bankPath) = (parse.GetValue(model)!.FullName, parse.GetValue(memory)!.FullName);
            if (engine.Resolve(parse, io) == EngineKind.Ilgpu)
            {
                using var ilgpu = IlgpuModel.Open(modelPath, engine.AcceleratorOf(parse));
                using var ilgpuBank = IlgpuBank.Load(ilgpu, bankPath);
                io.Output.WriteLine(Ask(ilgpuBank, parse.GetValue(question)!));
                return;
            }
            using var m = MomeModel.Open(modelPath);
            using var bank = MemoryBank.Load(m, bankPath);
            io.Output.WriteLine(Ask(bank, parse.GetValue(question)!));
        }));
        return command;
    }

    /// <summary>The model's greedy answer to a question, with the bank.</summary>
    public static string Ask(MemoryBank bank, string question, int maxTokens = 64)
    {
        using var generator = new TextGenerator(bank.Model, new SessionOptions { Memory = bank });
        var prompt = bank.PromptOf(question) ?? new MemoryTuner(bank).PromptOf(question);
        return generator.Generate(prompt, new GenerationOptions { MaxTokens = maxTokens }).Trim();
    }

    /// <summary>The same on the ILGPU engine.</summary>
    public static string Ask(IlgpuBank bank, string question, int maxTokens = 64)
    {
        using var generator = new TextGenerator(new IlgpuSession(bank.Model, memory: bank), bank.Model.Tokenizer);
        var prompt = bank.PromptOf(question) ?? new FactEncoder(bank.Model.Tokenizer, new TuningOptions().PromptTemplate).PromptOf(question);
        return generator.Generate(prompt, new GenerationOptions { MaxTokens = maxTokens }).Trim();
    }

    private static Command EvalCommand(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Required = true };
        var memory = new Option<FileInfo>("--memory") { Required = true };
        var facts = new Option<FileInfo>("--facts") { Required = true };
        var unrelated = new Option<FileInfo?>("--unrelated") { Description = "Prompts unrelated to the facts, one per line (\\n inside a line is a newline)." };
        var unseen = new Option<FileInfo?>("--unseen") { Description = "Questions of the facts' kind that were never memorised (JSONL facts)." };
        var paraphrases = new Option<FileInfo?>("--paraphrases") { Description = "Reworded questions with the memorised answers (JSONL facts)." };
        var gate = new Option<string?>("--gate") { Description = "Evaluate with this gate threshold instead of the saved one (off, or a value in [-1, 1]); the file is not changed." };
        var json = new Option<bool>("--json");
        var command = new Command("eval", "Reliability (exact recall), locality (KL and top-1 on unrelated prompts, false recall on unseen questions) and generality (paraphrases).")
        {
            model, memory, facts, unrelated, unseen, paraphrases, gate, json,
        };
        var engine = new EngineOptions();
        engine.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var factList = FactsFile.Load(parse.GetValue(facts)!.FullName);
            var prompts = parse.GetValue(unrelated) is { } file ? PromptsFile.Load(file.FullName) : null;
            var unseenList = parse.GetValue(unseen) is { } u ? FactsFile.Load(u.FullName) : null;
            var paraphraseList = parse.GetValue(paraphrases) is { } p ? FactsFile.Load(p.FullName) : null;
            var threshold = parse.GetValue(gate) is { } g
                ? GateOption(g) ?? throw new ArgumentException("--gate of mome eval takes off or a threshold, not auto")
                : (float?)null;
            var (modelPath, bankPath) = (parse.GetValue(model)!.FullName, parse.GetValue(memory)!.FullName);
            EvaluationResult r;
            MemoryGate bankGate;
            if (engine.Resolve(parse, io) == EngineKind.Ilgpu)
            {
                using var ilgpu = IlgpuModel.Open(modelPath, engine.AcceleratorOf(parse));
                using var ilgpuBank = IlgpuBank.Load(ilgpu, bankPath);
                if (threshold is { } t) ilgpuBank.SetGateThreshold(0, t);
                r = MemoryEvaluator.Evaluate(withBank => new IlgpuSession(ilgpu, memory: withBank ? ilgpuBank : null),
                    new FactEncoder(ilgpu.Tokenizer, new TuningOptions().PromptTemplate), factList, prompts, unseenList, paraphraseList);
                bankGate = ilgpuBank.GetGate();
            }
            else
            {
                using var m = MomeModel.Open(modelPath);
                using var bank = MemoryBank.Load(m, bankPath);
                if (threshold is { } t) bank.SetGateThreshold(0, t);
                r = MemoryEvaluator.Evaluate(bank, factList, prompts, unseen: unseenList, paraphrases: paraphraseList);
                bankGate = bank.GetGate();
            }
            if (parse.GetValue(json))
            {
                io.Output.WriteLine(EvaluationJson(r, bankGate).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return;
            }
            io.Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"exact recall {r.ExactRecall:P1}, token accuracy {r.TokenAccuracy:P1} ({r.Facts} facts)"));
            io.Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"locality: interference KL {r.InterferenceKl:G3} (max {r.InterferenceKlMax:G3}), top-1 unchanged {r.LocalityTop1:P2} over {r.UnrelatedPositions} positions of {r.UnrelatedPrompts} unrelated prompts"));
            if (r.UnseenQuestions > 0)
                io.Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"unseen questions: false recall {r.UnseenFalseRecall:P1}, KL {r.UnseenKl:G3} ({r.UnseenQuestions} questions)"));
            if (r.Paraphrases > 0)
                io.Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generality: {r.Generality:P1} of {r.Paraphrases} paraphrases"));
        }));
        return command;
    }

    /// <summary>The named JSON fields of an evaluation (null where there was no input).</summary>
    public static JsonObject EvaluationJson(EvaluationResult r, MemoryGate gate)
    {
        static JsonNode? Number(double v) => double.IsNaN(v) ? null : JsonValue.Create(v);
        return new JsonObject
        {
            ["exact_recall"] = r.ExactRecall, ["token_accuracy"] = r.TokenAccuracy,
            ["interference_kl"] = r.InterferenceKl, ["interference_kl_max"] = r.InterferenceKlMax, ["locality_top1"] = Number(r.LocalityTop1),
            ["unseen_false_recall"] = Number(r.UnseenFalseRecall), ["unseen_kl"] = Number(r.UnseenKl), ["generality"] = Number(r.Generality),
            ["facts"] = r.Facts, ["unrelated_prompts"] = r.UnrelatedPrompts, ["unrelated_positions"] = r.UnrelatedPositions,
            ["unseen_questions"] = r.UnseenQuestions, ["paraphrases"] = r.Paraphrases,
            ["gate_threshold"] = gate.IsOn ? gate.Threshold : null, ["gate_signatures"] = gate.Signatures,
        };
    }
}
