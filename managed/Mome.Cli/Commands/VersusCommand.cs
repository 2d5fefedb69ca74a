using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mome.Cli.Versus;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome bench versus`: memory tuning against LoRA and full fine-tuning on the same
/// model and facts, each to exact recall or its budget, each at the best rate of a small grid.</summary>
public static class VersusCommand
{
    public static readonly string[] MethodNames = ["memory", "lora", "full"];

    public static Command Create(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Description = "The base model (GGUF).", Required = true };
        var facts = new Option<FileInfo>("--facts") { Description = "Facts as JSONL: {\"question\": ..., \"answer\": ...} per line.", Required = true };
        var unrelated = new Option<FileInfo?>("--unrelated") { Description = "Prompts for the interference KL, one per line (default: mome eval's)." };
        var budget = new Option<int>("--budget-epochs") { Description = "Epochs each run may take at most.", DefaultValueFactory = _ => 100 };
        var methods = new Option<string>("--methods") { Description = "Comma-separated memory,lora,full.", DefaultValueFactory = _ => "memory,lora,full" };
        var memoryLrs = new Option<string>("--memory-lrs") { Description = "Learning rates tried for memory tuning.", DefaultValueFactory = _ => "0.1,0.3,1" };
        var loraLrs = new Option<string>("--lora-lrs") { Description = "Learning rates tried for LoRA fine-tuning.", DefaultValueFactory = _ => "0.001,0.003,0.01" };
        var fullLrs = new Option<string>("--full-lrs") { Description = "Learning rates tried for full fine-tuning.", DefaultValueFactory = _ => "0.0001,0.0003,0.001" };
        var rank = new Option<int>("--lora-rank") { Description = "Rank of the LoRA adapters (alpha = 2 x rank).", DefaultValueFactory = _ => 8 };
        var experts = new Option<long?>("--experts") { Description = "Experts of the memory bank (default: as `mome tune` sizes it)." };
        var batch = new Option<int>("--batch") { Description = "Facts per step, every method.", DefaultValueFactory = _ => 16 };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 0 };
        var capacity = new Option<string?>("--capacity") { Description = "Comma-separated fact counts (the facts' first n): how many each method holds at 100% recall, at its chosen rate." };
        var plot = new Option<FileInfo?>("--plot") { Description = "Write the recall-vs-FLOPs curves of the chosen runs here (PNG)." };
        var json = new Option<bool>("--json");
        var command = new Command("versus", "Memory tuning vs LoRA vs full fine-tuning: recall, epochs, wall time, FLOPs, parameters, optimiser state, memory, interference.")
        {
            model, facts, unrelated, budget, methods, memoryLrs, loraLrs, fullLrs, rank, experts, batch, threads, capacity, plot, json,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var chosen = parse.GetValue(methods)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
            foreach (var name in chosen)
                if (!MethodNames.Contains(name)) throw new ArgumentException($"unknown method '{name}': choose from {string.Join(", ", MethodNames)}");
            if (chosen.Count == 0) throw new ArgumentException("--methods names no method");
            var grids = new Dictionary<string, List<float>>
            {
                ["memory"] = Rates(parse.GetValue(memoryLrs)!, "--memory-lrs"), ["lora"] = Rates(parse.GetValue(loraLrs)!, "--lora-lrs"),
                ["full"] = Rates(parse.GetValue(fullLrs)!, "--full-lrs"),
            };
            if (parse.GetValue(budget) < 1) throw new ArgumentException($"--budget-epochs is {parse.GetValue(budget)}; it must be at least 1");
            if (parse.GetValue(rank) < 1) throw new ArgumentException($"--lora-rank is {parse.GetValue(rank)}; it must be at least 1");
            if (parse.GetValue(batch) < 1) throw new ArgumentException($"--batch is {parse.GetValue(batch)}; it must be at least 1");
            var counts = parse.GetValue(capacity) is { } list ? Counts(list) : [];
            var factList = FactsFile.Load(parse.GetValue(facts)!.FullName);
            if (factList.Count == 0) throw new ArgumentException($"{parse.GetValue(facts)!.FullName} holds no facts");
            var prompts = parse.GetValue(unrelated) is { } file ? PromptsFile.Load(file.FullName) : MemoryEvaluator.DefaultUnrelatedPrompts;
            using var m = MomeModel.Open(parse.GetValue(model)!.FullName);
            var setup = new VersusSetup(m, factList, prompts, parse.GetValue(budget), parse.GetValue(batch), parse.GetValue(threads),
                parse.GetValue(rank), parse.GetValue(experts));
            var results = new List<(VersusRun Best, List<VersusRun> Grid)>();
            foreach (var method in chosen)
            {
                var grid = grids[method].Select(lr => method switch
                {
                    "memory" => VersusRunner.Memory(setup, lr, io.Error.WriteLine),
                    "lora" => VersusRunner.FineTune(setup, FineTuningMode.Lora, lr, io.Error.WriteLine),
                    _ => VersusRunner.FineTune(setup, FineTuningMode.Full, lr, io.Error.WriteLine),
                }).ToList();
                results.Add((VersusRunner.Best(grid), grid));
            }
            var root = BenchCommands.WithMachine(new JsonObject
            {
                ["model"] = Path.GetFileName(parse.GetValue(model)!.FullName), ["parameters"] = m.Config.ParameterCount, ["facts"] = factList.Count,
                ["unrelated_prompts"] = prompts.Count, ["budget_epochs"] = setup.BudgetEpochs, ["batch"] = setup.BatchSize, ["lora_rank"] = setup.LoraRank,
                ["methods"] = new JsonArray([.. results.Select(r => (JsonNode)ToJson(r.Best, r.Grid))]),
            });
            AddRatios(root, results.Select(r => r.Best).ToList());
            if (counts.Count > 0) root["capacity"] = CapacityJson(setup, results.Select(r => r.Best), counts, io.Error.WriteLine);
            if (parse.GetValue(plot) is { } png)
            {
                RecallPlot.Write(png.FullName, results.Select(r => r.Best).ToList(), $"{Path.GetFileName(parse.GetValue(model)!.FullName)}, {factList.Count} facts");
                root["plot"] = png.FullName;
            }
            if (parse.GetValue(json))
            {
                io.Output.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return;
            }
            var table = new Table().AddColumns("method", "lr", "recall", "epochs", "steps", "wall s", "FLOPs", "trained params", "opt. state B", "peak RSS MB", "KL");
            foreach (var (r, _) in results)
                table.AddRow(r.Method, F(r.LearningRate), F(r.ExactRecall), F(r.Epochs), F(r.Steps), F(Math.Round(r.WallSeconds, 1)), r.Flops.ToString("E2", CultureInfo.InvariantCulture),
                    F(r.TrainedParams), F(r.OptimizerStateBytes), F(r.PeakRssMb), r.InterferenceKl.ToString("G3", CultureInfo.InvariantCulture));
            io.Console.Write(table);
        }));
        return command;
    }

    private static string F<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);

    private static List<float> Rates(string text, string option)
    {
        var rates = new List<float>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!float.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var lr) || !(lr > 0) || float.IsInfinity(lr))
                throw new ArgumentException($"{option}: '{part}' is not a positive learning rate");
            rates.Add(lr);
        }
        if (rates.Count == 0) throw new ArgumentException($"{option} names no learning rate");
        return rates;
    }

    private static List<int> Counts(string text)
    {
        var counts = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < 1)
                throw new ArgumentException($"--capacity: '{part}' is not a positive number of facts");
            counts.Add(n);
        }
        return counts;
    }

    // Per method: every trial, and the largest count held at 100% with its bits per trained parameter.
    private static JsonObject CapacityJson(VersusSetup setup, IEnumerable<VersusRun> best, List<int> counts, Action<string> log)
    {
        var methods = new JsonArray();
        foreach (var r in best)
        {
            var points = Capacity.Run(setup, r.Method, r.LearningRate, counts, log);
            var held = points.LastOrDefault(p => p.ExactRecall >= 1);
            methods.Add(new JsonObject
            {
                ["method"] = r.Method, ["learning_rate"] = r.LearningRate, ["facts_held"] = held?.Facts ?? 0,
                ["answer_bits_held"] = Math.Round(held?.AnswerBits ?? 0, 1), ["trained_params"] = held?.TrainedParams ?? 0,
                ["bits_per_param"] = Math.Round(held?.BitsPerParam ?? 0, 4),
                ["trials"] = new JsonArray([.. points.Select(p => (JsonNode)new JsonObject
                {
                    ["facts"] = p.Facts, ["exact_recall"] = p.ExactRecall, ["epochs"] = p.Epochs, ["trained_params"] = p.TrainedParams,
                    ["answer_bits"] = Math.Round(p.AnswerBits, 1),
                })]),
            });
        }
        return new JsonObject { ["anchor_bits_per_param"] = Capacity.AnchorBitsPerParam, ["budget_epochs"] = setup.BudgetEpochs, ["methods"] = methods };
    }

    private static JsonObject ToJson(VersusRun r, List<VersusRun> grid) => new()
    {
        ["method"] = r.Method, ["learning_rate"] = r.LearningRate, ["exact_recall"] = r.ExactRecall, ["epochs"] = r.Epochs, ["steps"] = r.Steps,
        ["wall_s"] = Math.Round(r.WallSeconds, 2), ["flops"] = r.Flops, ["trained_params"] = r.TrainedParams,
        ["optimizer_state_bytes"] = r.OptimizerStateBytes, ["peak_rss_mb"] = r.PeakRssMb, ["interference_kl"] = r.InterferenceKl,
        ["recall_curve"] = new JsonArray([.. r.RecallCurve.Select(v => (JsonNode)v)]),
        ["flops_curve"] = new JsonArray([.. r.FlopsCurve.Select(v => (JsonNode)v)]),
        ["lr_grid"] = new JsonArray([.. grid.Select(g => (JsonNode)new JsonObject
        {
            ["learning_rate"] = g.LearningRate, ["exact_recall"] = g.ExactRecall, ["epochs"] = g.Epochs, ["wall_s"] = Math.Round(g.WallSeconds, 2),
            ["flops"] = g.Flops,
        })]),
    };

    // FLOPs and wall time of each fine-tuning method over memory tuning's.
    private static void AddRatios(JsonObject root, List<VersusRun> best)
    {
        if (best.FirstOrDefault(r => r.Method == "memory") is not { } memory) return;
        var ratios = new JsonObject();
        foreach (var r in best.Where(r => r.Method != "memory"))
        {
            ratios[$"{r.Method}_flops_over_memory"] = memory.Flops > 0 ? Math.Round(r.Flops / memory.Flops, 3) : null;
            ratios[$"{r.Method}_wall_over_memory"] = memory.WallSeconds > 0 ? Math.Round(r.WallSeconds / memory.WallSeconds, 3) : null;
        }
        root["ratios"] = ratios;
    }
}
