using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mome.Bench;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome bench ...`: side-by-side speed comparisons (never assertions).</summary>
public static class BenchCommands
{
    public static Command Create(CliIo io) => new("bench", "Measure Mome against reference engines on this machine.")
    {
        ForwardCommand(io),
        LoraCommand(io),
        RouterCommand(io),
        TuneCommand(io),
        VersusCommand.Create(io),
    };

    private static Command TuneCommand(CliIo io)
    {
        var facts = new Option<int>("--facts") { Description = "Random facts to memorise.", DefaultValueFactory = _ => 1000 };
        var preset = new Option<string>("--preset") { Description = "Synthetic model preset (mini: ~8M parameters).", DefaultValueFactory = _ => "mini" };
        preset.AcceptOnlyFromAmong([.. SyntheticModelConfig.PresetNames]);
        var experts = new Option<long?>("--experts") { Description = "Default: as `mome tune` sizes a bank for the model." };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 60 };
        var routerEpochs = new Option<int>("--router-epochs") { Description = "Phase 0 epochs that also train the router." };
        var schedule = new Option<LearningRateSchedule>("--lr-schedule") { DefaultValueFactory = _ => new TuningOptions().Schedule };
        var optimizer = new Option<TuningOptimizer>("--optimizer") { DefaultValueFactory = _ => new TuningOptions().Optimizer };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => new TuningOptions().LearningRate };
        var batch = new Option<int?>("--batch") { Description = "Facts per step (default: the tuner's, 16)." };
        var compare = new Option<string?>("--compare-batch") { Description = "Comma-separated batch sizes, each tuned from the same fresh bank in this run (e.g. 1,16)." };
        var rank = new Option<int?>("--rank") { Description = "LoRA rank of each expert (default 4)." };
        var bankType = new Option<TensorType>("--bank-type") { Description = "Storage type of the expert tables: F32, F16 or BF16.", DefaultValueFactory = _ => TensorType.F32 };
        var save = new Option<string?>("--save") { Description = "Save each tuned bank here, load it back (memory-mapped) and evaluate the loaded bank." };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 0 };
        var gate = new Option<string>("--gate") { Description = "The locality gate: auto (calibrated), off, or a threshold in [-1, 1].", DefaultValueFactory = _ => "auto" };
        var json = new Option<bool>("--json");
        var command = new Command("tune", "Memory tuning to exact recall: wall time, epochs, facts/s, optimiser state, peak memory, interference.")
        {
            facts, preset, experts, rank, bankType, save, epochs, routerEpochs, schedule, lr, optimizer, batch, compare, threads, gate, json,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var path = Path.Combine(ModelCache.Folder, "models", $"{parse.GetValue(preset)}-tune-std025.gguf");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (!File.Exists(path))
                MomeModel.CreateSynthetic(SyntheticModelConfig.Preset(parse.GetValue(preset)!) with { InitStd = 0.25f }, path, seed: 3);
            using var model = MomeModel.Open(path);
            var factList = SyntheticFacts.Random(parse.GetValue(facts), seed: 11);
            var batches = parse.GetValue(compare) is { } list ? Ints(list).Select(b => (int?)b).ToArray() : [parse.GetValue(batch)];
            var rows = new JsonArray();
            MemoryOptions? bankOptions = null;
            foreach (var size in batches)
            {
                var created = System.Diagnostics.Stopwatch.StartNew();
                using var bank = MemoryBank.Create(model, TuningCommands.BankFor(model, parse.GetValue(experts), rank: parse.GetValue(rank)) with
                {
                    WeightType = parse.GetValue(bankType),
                });
                var createS = created.Elapsed.TotalSeconds;
                bankOptions = bank.Options;
                var options = new TuningOptions
                {
                    Epochs = parse.GetValue(epochs), RouterEpochs = parse.GetValue(routerEpochs), Schedule = parse.GetValue(schedule),
                    Optimizer = parse.GetValue(optimizer), BatchSize = size, Threads = parse.GetValue(threads), LearningRate = parse.GetValue(lr),
                    GateThreshold = TuningCommands.GateOption(parse.GetValue(gate)!),
                };
                var result = new MemoryTuner(bank, options).TuneAsync(factList, new InlineProgress<TuningProgress>(p =>
                {
                    if (p.Position == p.Total)
                        io.Error.WriteLine($"batch {size?.ToString(CultureInfo.InvariantCulture) ?? "default"}, epoch {p.Epoch}: loss {p.Loss:F3}, recall {p.Recall:P1}, {p.FactsPerSecond:F0} facts/s");
                })).GetAwaiter().GetResult();
                var eval = MemoryEvaluator.Evaluate(bank, factList);
                var row = new JsonObject
                {
                    ["batch"] = size ?? 16, ["learning_rate"] = options.LearningRate, ["optimizer"] = options.Optimizer.ToString().ToLowerInvariant(), ["epochs"] = result.Epochs,
                    ["wall_s"] = Math.Round(result.Elapsed.TotalSeconds, 1), ["facts_per_s"] = Math.Round(result.FactsPerSecond, 1),
                    ["exact_recall"] = eval.ExactRecall, ["token_accuracy"] = Math.Round(eval.TokenAccuracy, 4),
                    ["interference_kl"] = Math.Round(eval.InterferenceKl, 4), ["touched_experts"] = result.TouchedExperts,
                    ["state_bytes_per_expert"] = result.StateBytesPerExpert, ["optimizer_state_mib"] = Math.Round(result.OptimizerStateBytes / 1048576.0, 1),
                    ["gate_s"] = Math.Round(result.GateTime.TotalSeconds, 1), ["create_s"] = Math.Round(createS, 1),
                    ["bank_mib"] = Math.Round(bank.SizeBytes / 1048576.0, 0), ["rss_after_tuning_mib"] = RssMiB(),
                };
                if (parse.GetValue(save) is { } savePath)
                {
                    var saving = System.Diagnostics.Stopwatch.StartNew();
                    bank.Save(savePath);
                    row["save_s"] = Math.Round(saving.Elapsed.TotalSeconds, 1);
                    bank.Dispose();
                    GC.Collect();
                    using var loaded = MemoryBank.Load(model, savePath);
                    var reloaded = MemoryEvaluator.Evaluate(loaded, factList);
                    row["reloaded_exact_recall"] = reloaded.ExactRecall;
                    row["rss_after_reload_eval_mib"] = RssMiB();
                }
                rows.Add(row);
            }
            var rssMiB = System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024);
            var root = WithMachine(new JsonObject
            {
                ["model"] = Path.GetFileName(path), ["parameters"] = model.Config.ParameterCount, ["facts"] = factList.Count,
                ["experts"] = bankOptions!.Experts, ["router"] = bankOptions.Router.ToString().ToLowerInvariant(), ["top_k"] = bankOptions.TopK,
                ["rank"] = bankOptions.Rank, ["router_epochs"] = parse.GetValue(routerEpochs),
                ["lr_schedule"] = parse.GetValue(schedule).ToString().ToLowerInvariant(), ["peak_rss_mib"] = Math.Round(rssMiB, 0),
                ["results"] = rows,
            });
            if (rows.Count > 1 && rows[0]!["facts_per_s"]!.GetValue<double>() > 0)
                root["speedup_last_vs_first"] = Math.Round(rows[^1]!["facts_per_s"]!.GetValue<double>() / rows[0]!["facts_per_s"]!.GetValue<double>(), 2);
            if (parse.GetValue(json))
            {
                io.Output.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return;
            }
            foreach (var (key, value) in root.Where(p => p.Key != "results")) io.Console.WriteLine($"{key,-24} {value}");
            var table = new Table().AddColumns("batch", "optimizer", "epochs", "wall s", "facts/s", "exact recall", "KL", "touched", "state B/expert");
            foreach (var r in rows)
                table.AddRow(r!["batch"]!.ToString(), r["optimizer"]!.ToString(), r["epochs"]!.ToString(), r["wall_s"]!.ToString(),
                    r["facts_per_s"]!.ToString(), r["exact_recall"]!.ToString(), r["interference_kl"]!.ToString(), r["touched_experts"]!.ToString(),
                    r["state_bytes_per_expert"]!.ToString());
            io.Console.Write(table);
        }));
        return command;
    }

    // This process's resident memory now (after a collection), in MiB.
    private static double RssMiB()
    {
        GC.Collect();
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return Math.Round(self.WorkingSet64 / 1048576.0, 0);
    }

    private static Command RouterCommand(CliIo io)
    {
        var experts = new Option<long>("--experts") { Description = "Experts (keys); a perfect square for the product router.", DefaultValueFactory = _ => 1L << 20 };
        var keyDim = new Option<int>("--key-dim") { DefaultValueFactory = _ => 128 };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 32 };
        var batches = new Option<string>("--batches") { Description = "Comma-separated query batch sizes.", DefaultValueFactory = _ => "1,16,64" };
        var threads = new Option<string>("--threads") { Description = "Comma-separated thread counts.", DefaultValueFactory = _ => "1,2" };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per engine (median reported).", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("router", "Queries/s of Mome's flat and product-key routers and FAISS IndexFlatIP, side by side.")
        {
            experts, keyDim, topK, batches, threads, repeats, json,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            if (!RouterComparison.FaissPeerPresent) io.Error.WriteLine(RouterComparison.FaissAbsentMessage);
            var copy = LoraComparison.MeasureCopyGBps();
            var results = RouterComparison.Run(parse.GetValue(experts), parse.GetValue(keyDim), parse.GetValue(topK),
                Ints(parse.GetValue(batches)!), Ints(parse.GetValue(threads)!), parse.GetValue(repeats), copy, m => io.Error.WriteLine(m));
            if (parse.GetValue(json))
            {
                var root = WithMachine(new JsonObject
                {
                    ["experts"] = parse.GetValue(experts), ["key_dim"] = parse.GetValue(keyDim), ["top_k"] = parse.GetValue(topK),
                    ["copy_gbps"] = Math.Round(copy, 2),
                    ["faiss"] = RouterComparison.FaissPeerPresent ? "present" : RouterComparison.FaissAbsentMessage,
                    ["results"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject
                    {
                        ["batch"] = r.Batch, ["threads"] = r.Threads, ["mome_qps"] = Math.Round(r.MomeF32Qps, 2),
                        ["mome_bf16_qps"] = Math.Round(r.MomeBf16Qps, 2), ["faiss_qps"] = r.FaissQps is { } f ? Math.Round(f, 2) : null,
                        ["product_qps"] = Math.Round(r.ProductQps, 2), ["f32_bandwidth_fraction"] = Math.Round(r.F32BandwidthFraction, 3),
                        ["bf16_bandwidth_fraction"] = Math.Round(r.Bf16BandwidthFraction, 3), ["top_k_matches_faiss"] = r.TopMatchesFaiss,
                    })]),
                });
                io.Output.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return;
            }
            io.Console.WriteLine($"memory copy: {copy:F1} GB/s; {parse.GetValue(experts)} experts x d_k {parse.GetValue(keyDim)}, top-{parse.GetValue(topK)}");
            var table = new Table().AddColumns("B", "threads", "mome F32 q/s", "of copy", "mome BF16 q/s", "of copy", "FAISS q/s",
                "mome/FAISS", "product q/s", "product/flat", "same top-k");
            foreach (var r in results)
                table.AddRow(r.Batch.ToString(CultureInfo.InvariantCulture), r.Threads.ToString(CultureInfo.InvariantCulture),
                    r.MomeF32Qps.ToString("F1", CultureInfo.InvariantCulture), r.F32BandwidthFraction.ToString("P0", CultureInfo.InvariantCulture),
                    r.MomeBf16Qps.ToString("F1", CultureInfo.InvariantCulture), r.Bf16BandwidthFraction.ToString("P0", CultureInfo.InvariantCulture),
                    r.FaissQps?.ToString("F1", CultureInfo.InvariantCulture) ?? "absent",
                    r.FaissQps is { } f ? (r.MomeF32Qps / f).ToString("F2", CultureInfo.InvariantCulture) : "-",
                    r.ProductQps.ToString("F0", CultureInfo.InvariantCulture), (r.ProductQps / r.MomeF32Qps).ToString("F0", CultureInfo.InvariantCulture),
                    r.FaissQps is null ? "-" : r.TopMatchesFaiss ? "yes" : "NO");
            io.Console.Write(table);
        }));
        return command;
    }

    /// <summary>Every benchmark's JSON starts with the machine and the date it ran on.</summary>
    internal static JsonObject WithMachine(JsonObject results)
    {
        var root = new JsonObject
        {
            ["machine"] = $"{Environment.ProcessorCount} cores, {MomeRuntime.Devices[0].Name}",
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in results.ToList())
        {
            results.Remove(key);
            root[key] = value;
        }
        return root;
    }

    internal static List<int> Ints(string text) => text.Split(',', StringSplitOptions.TrimEntries).Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToList();

    private static Command LoraCommand(CliIo io)
    {
        var types = new Option<string>("--weight-types") { Description = "Comma-separated f32,f16,bf16.", DefaultValueFactory = _ => "f32,bf16" };
        var threads = new Option<string>("--threads") { Description = "Comma-separated thread counts.", DefaultValueFactory = _ => "1,2" };
        var repeats = new Option<int>("--repeats") { Description = "Timed runs per configuration (median reported).", DefaultValueFactory = _ => 7 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("lora", "GB/s of expert weights applied by the grouped LoRA (65,536 experts, d 768, k 32).")
        {
            types, threads, repeats, json,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var copy = LoraComparison.MeasureCopyGBps();
            var typeList = parse.GetValue(types)!.Split(',', StringSplitOptions.TrimEntries).Select(t => t.ToLowerInvariant() switch
            {
                "f32" => TensorType.F32, "f16" => TensorType.F16, "bf16" => TensorType.BF16,
                _ => throw new ArgumentException($"unknown weight type '{t}'"),
            }).ToList();
            var threadList = parse.GetValue(threads)!.Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToList();
            var results = LoraComparison.Run(typeList, threadList, parse.GetValue(repeats), copy, m => io.Error.WriteLine(m));
            if (parse.GetValue(json))
            {
                var root = WithMachine(new JsonObject
                {
                    ["copy_gbps"] = Math.Round(copy, 2),
                    ["faiss"] = RouterComparison.FaissPeerPresent ? "present" : RouterComparison.FaissAbsentMessage,
                    ["results"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject
                    {
                        ["weight_type"] = r.WeightType, ["sequences"] = r.Sequences, ["tokens_per_sequence"] = r.TokensPerSequence,
                        ["top_k"] = r.TopK, ["rank"] = r.Rank, ["dim"] = r.Dim, ["threads"] = r.Threads,
                        ["ms"] = Math.Round(r.Milliseconds, 4), ["expert_gbps"] = Math.Round(r.ExpertGBps, 3),
                        ["copy_fraction"] = Math.Round(r.CopyFraction, 3),
                    })]),
                });
                io.Output.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return;
            }
            io.Console.WriteLine($"memory copy: {copy:F1} GB/s");
            var table = new Table().AddColumns("weights", "rank", "sequences x tokens", "threads", "ms", "expert GB/s", "of copy");
            foreach (var r in results)
                table.AddRow(r.WeightType, r.Rank.ToString(CultureInfo.InvariantCulture), $"{r.Sequences} x {r.TokensPerSequence}",
                    r.Threads.ToString(CultureInfo.InvariantCulture), r.Milliseconds.ToString("F3", CultureInfo.InvariantCulture),
                    r.ExpertGBps.ToString("F2", CultureInfo.InvariantCulture), r.CopyFraction.ToString("P0", CultureInfo.InvariantCulture));
            io.Console.Write(table);
        }));
        return command;
    }

    private static Command ForwardCommand(CliIo io)
    {
        var model = new Option<FileInfo?>("--model") { Description = "A GGUF model; default: the synthetic preset (created and cached)." };
        var preset = new Option<string>("--preset") { Description = "Synthetic preset when --model is absent.", DefaultValueFactory = _ => "small" };
        preset.AcceptOnlyFromAmong([.. SyntheticModelConfig.PresetNames]);
        var types = new Option<string>("--weight-types") { Description = "Comma-separated f32,f16,bf16,q8_0,q4_k_m (synthetic models only; q8_0 quantized by Mome, q4_k_m by llama.cpp).", DefaultValueFactory = _ => "f32,f16" };
        var threads = new Option<string>("--threads") { Description = "Comma-separated thread counts.", DefaultValueFactory = _ => "1,2" };
        var prompt = new Option<int>("--prompt") { Description = "Prompt tokens (prefill).", DefaultValueFactory = _ => 128 };
        var decode = new Option<int>("--decode") { Description = "Tokens decoded one at a time.", DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { Description = "Timed rounds per configuration (median reported).", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("forward", "Prefill and decode tokens/s of Mome and llama.cpp side by side.")
        {
            model, preset, types, threads, prompt, decode, repeats, json,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var paths = new List<(string Path, string Label)>();
            if (parse.GetValue(model) is { } file) paths.Add((file.FullName, "file"));
            else
                foreach (var type in parse.GetValue(types)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    paths.Add((ModelCache.Synthetic(parse.GetValue(preset)!, type, io), type.ToUpperInvariant()));
            var threadCounts = parse.GetValue(threads)!.Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToList();
            var copy = LoraComparison.MeasureCopyGBps();
            var results = new List<ForwardResult>();
            foreach (var (path, label) in paths)
                foreach (var t in threadCounts)
                    results.Add(ForwardComparison.Run(path, label, t, parse.GetValue(prompt), parse.GetValue(decode), parse.GetValue(repeats),
                        message => io.Error.WriteLine(message)));
            if (parse.GetValue(json)) io.Output.WriteLine(ToJson(results, copy).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else WriteTable(io.Console, results, copy);
        }));
        return command;
    }

    private static JsonObject ToJson(List<ForwardResult> results, double copyGBps) => WithMachine(new JsonObject
    {
        ["copy_gbps"] = Math.Round(copyGBps, 2),
        ["results"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject
        {
            ["model"] = r.Model, ["weight_type"] = r.WeightType, ["threads"] = r.Threads,
            ["prompt_tokens"] = r.PromptTokens, ["decode_tokens"] = r.DecodeTokens,
            ["mome_prefill_tps"] = Math.Round(r.MomePrefillTps, 2), ["llama_prefill_tps"] = Math.Round(r.LlamaPrefillTps, 2),
            ["prefill_ratio"] = Math.Round(r.PrefillRatio, 3),
            ["mome_decode_tps"] = Math.Round(r.MomeDecodeTps, 2), ["llama_decode_tps"] = Math.Round(r.LlamaDecodeTps, 2),
            ["decode_ratio"] = Math.Round(r.DecodeRatio, 3),
            ["decode_weight_bytes"] = Math.Round(r.DecodeWeightBytes),
            ["mome_decode_gbps"] = Math.Round(r.MomeDecodeGBps, 2), ["llama_decode_gbps"] = Math.Round(r.LlamaDecodeGBps, 2),
            ["mome_decode_copy_fraction"] = Math.Round(r.MomeDecodeGBps / copyGBps, 3),
            ["llama_decode_copy_fraction"] = Math.Round(r.LlamaDecodeGBps / copyGBps, 3),
        })]),
    });

    private static void WriteTable(IAnsiConsole console, List<ForwardResult> results, double copyGBps)
    {
        console.WriteLine($"memory copy: {copyGBps:F1} GB/s; decode GB/s = weights read per token x tokens/s");
        var table = new Table().AddColumns("model", "weights", "threads", "prefill tok/s mome", "llama.cpp", "ratio",
            "decode tok/s mome", "llama.cpp", "ratio", "decode GB/s mome", "llama.cpp", "mome of copy");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Model), r.WeightType, r.Threads.ToString(CultureInfo.InvariantCulture),
                r.MomePrefillTps.ToString("F1", CultureInfo.InvariantCulture), r.LlamaPrefillTps.ToString("F1", CultureInfo.InvariantCulture),
                r.PrefillRatio.ToString("F2", CultureInfo.InvariantCulture),
                r.MomeDecodeTps.ToString("F1", CultureInfo.InvariantCulture), r.LlamaDecodeTps.ToString("F1", CultureInfo.InvariantCulture),
                r.DecodeRatio.ToString("F2", CultureInfo.InvariantCulture),
                r.MomeDecodeGBps.ToString("F1", CultureInfo.InvariantCulture), r.LlamaDecodeGBps.ToString("F1", CultureInfo.InvariantCulture),
                (r.MomeDecodeGBps / copyGBps).ToString("P0", CultureInfo.InvariantCulture));
        console.Write(table);
    }
}
