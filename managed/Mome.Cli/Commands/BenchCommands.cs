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
    };

    private static Command ForwardCommand(CliIo io)
    {
        var model = new Option<FileInfo?>("--model") { Description = "A GGUF model; default: the synthetic preset (created and cached)." };
        var preset = new Option<string>("--preset") { Description = "Synthetic preset when --model is absent.", DefaultValueFactory = _ => "small" };
        preset.AcceptOnlyFromAmong([.. SyntheticModelConfig.PresetNames]);
        var types = new Option<string>("--weight-types") { Description = "Comma-separated f32,f16,bf16 (synthetic models only).", DefaultValueFactory = _ => "f32,f16" };
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
            var results = new List<ForwardResult>();
            foreach (var (path, label) in paths)
                foreach (var t in threadCounts)
                    results.Add(ForwardComparison.Run(path, label, t, parse.GetValue(prompt), parse.GetValue(decode), parse.GetValue(repeats),
                        message => io.Error.WriteLine(message)));
            if (parse.GetValue(json)) io.Output.WriteLine(ToJson(results).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else WriteTable(io.Console, results);
        }));
        return command;
    }

    private static JsonObject ToJson(List<ForwardResult> results) => new()
    {
        ["machine"] = $"{Environment.ProcessorCount} cores, {MomeRuntime.Devices[0].Name}",
        ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        ["results"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject
        {
            ["model"] = r.Model, ["weight_type"] = r.WeightType, ["threads"] = r.Threads,
            ["prompt_tokens"] = r.PromptTokens, ["decode_tokens"] = r.DecodeTokens,
            ["mome_prefill_tps"] = Math.Round(r.MomePrefillTps, 2), ["llama_prefill_tps"] = Math.Round(r.LlamaPrefillTps, 2),
            ["prefill_ratio"] = Math.Round(r.PrefillRatio, 3),
            ["mome_decode_tps"] = Math.Round(r.MomeDecodeTps, 2), ["llama_decode_tps"] = Math.Round(r.LlamaDecodeTps, 2),
            ["decode_ratio"] = Math.Round(r.DecodeRatio, 3),
        })]),
    };

    private static void WriteTable(IAnsiConsole console, List<ForwardResult> results)
    {
        var table = new Table().AddColumns("model", "weights", "threads", "prefill tok/s mome", "llama.cpp", "ratio",
            "decode tok/s mome", "llama.cpp", "ratio");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Model), r.WeightType, r.Threads.ToString(CultureInfo.InvariantCulture),
                r.MomePrefillTps.ToString("F1", CultureInfo.InvariantCulture), r.LlamaPrefillTps.ToString("F1", CultureInfo.InvariantCulture),
                r.PrefillRatio.ToString("F2", CultureInfo.InvariantCulture),
                r.MomeDecodeTps.ToString("F1", CultureInfo.InvariantCulture), r.LlamaDecodeTps.ToString("F1", CultureInfo.InvariantCulture),
                r.DecodeRatio.ToString("F2", CultureInfo.InvariantCulture));
        console.Write(table);
    }
}
