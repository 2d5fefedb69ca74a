using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome model create`, `mome model info` and `mome model quantize`.</summary>
public static class ModelCommands
{
    public static Command Create(CliIo io) => new("model", "Create and inspect GGUF model files.")
    {
        CreateCommand(io),
        InfoCommand(io),
        QuantizeCommand(io),
    };

    private static Command QuantizeCommand(CliIo io)
    {
        var input = new Argument<FileInfo>("in") { Description = "The GGUF model to quantize (F32, F16 or BF16 matrices)." };
        var output = new Argument<FileInfo>("out") { Description = "Path of the quantized GGUF file to write." };
        var type = new Argument<string>("type") { Description = "Q8_0 or Q4_0." };
        type.AcceptOnlyFromAmong("Q8_0", "Q4_0", "q8_0", "q4_0");
        var command = new Command("quantize", "Quantize a model's matrices to Q8_0 or Q4_0 (the bytes llama.cpp's quantizer writes).")
        {
            input, output, type,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var target = parse.GetValue(type)!.ToUpperInvariant() == "Q8_0" ? TensorType.Q8_0 : TensorType.Q4_0;
            var path = parse.GetValue(output)!.FullName;
            io.Console.Status().Start($"Writing {path}", _ => MomeModel.Quantize(parse.GetValue(input)!.FullName, path, target));
            io.Console.MarkupLineInterpolated($"Wrote [green]{path}[/] ({target}): {new FileInfo(path).Length / 1024.0:N0} KiB.");
        }));
        return command;
    }

    private static Command CreateCommand(CliIo io)
    {
        var preset = new Option<string>("--preset") { Description = "Model size: tiny (~0.2M parameters), mini (~10M) or small (~100M).", DefaultValueFactory = _ => "tiny" };
        preset.AcceptOnlyFromAmong([.. SyntheticModelConfig.PresetNames]);
        var output = new Option<FileInfo>("--out") { Description = "Path of the GGUF file to write.", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 42 };
        var weightType = new Option<string>("--weight-type") { Description = "Type of the projection weights: f32, f16 or bf16.", DefaultValueFactory = _ => "f32" };
        weightType.AcceptOnlyFromAmong("f32", "f16", "bf16");
        var tied = new Option<bool>("--tied") { Description = "Tie the output projection to the token embedding." };
        var initStd = new Option<float?>("--init-std") { Description = "Standard deviation of the random weights (default 0.02; the demo uses 0.25, which makes hidden states depend more on context)." };
        var command = new Command("create", "Write a synthetic Llama model (seeded random weights, a real byte-fallback vocabulary).")
        {
            preset, output, seed, weightType, tied, initStd,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            var config = SyntheticModelConfig.Preset(parse.GetValue(preset)!) with
            {
                WeightType = parse.GetValue(weightType) switch { "f16" => TensorType.F16, "bf16" => TensorType.BF16, _ => TensorType.F32 },
                TiedOutput = parse.GetValue(tied),
            };
            if (parse.GetValue(initStd) is { } std)
                config = std > 0 && float.IsFinite(std) ? config with { InitStd = std } : throw new ArgumentException($"--init-std must be a positive number, not {std}");
            var path = parse.GetValue(output)!.FullName;
            io.Console.Status().Start($"Writing {path}", _ => MomeModel.CreateSynthetic(config, path, parse.GetValue(seed)));
            using var model = MomeModel.Open(path);
            io.Console.MarkupLineInterpolated(
                $"Wrote [green]{path}[/]: {model.Config.ParameterCount:N0} parameters, {new FileInfo(path).Length / 1024.0:N0} KiB.");
        }));
        return command;
    }

    private static Command InfoCommand(CliIo io)
    {
        var path = new Argument<FileInfo>("model") { Description = "A GGUF file." };
        var json = new Option<bool>("--json") { Description = "Print JSON for machines instead of tables." };
        var maxArray = new Option<int>("--max-array") { Description = "Array elements to show per metadata value.", DefaultValueFactory = _ => 8 };
        var command = new Command("info", "Show a GGUF file's hyper-parameters, metadata and tensors.") { path, json, maxArray };
        command.SetAction(parse => io.Guard(() =>
        {
            using var model = MomeModel.Open(parse.GetValue(path)!.FullName, metadataOnly: true);
            if (parse.GetValue(json)) io.Output.WriteLine(ToJson(model, parse.GetValue(maxArray)).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            else WriteTables(io.Console, model, parse.GetValue(maxArray));
        }));
        return command;
    }

    internal static JsonObject ToJson(MomeModel model, int maxArray)
    {
        var file = model.FileInfo;
        var root = new JsonObject
        {
            ["path"] = model.Path,
            ["gguf_version"] = file.Version,
            ["alignment"] = file.Alignment,
            ["file_size"] = file.FileSize,
            ["architecture"] = model.Metadata.TryGetValue("general.architecture", out var arch) ? arch.ToString() : null,
        };
        if (model.IsLlama)
        {
            var c = model.Config;
            root["config"] = new JsonObject
            {
                ["n_vocab"] = c.VocabSize, ["n_ctx_train"] = c.ContextLength, ["n_embd"] = c.EmbeddingLength,
                ["n_layer"] = c.LayerCount, ["n_head"] = c.HeadCount, ["n_head_kv"] = c.KvHeadCount,
                ["head_dim"] = c.HeadDim, ["head_dim_v"] = c.ValueHeadDim, ["n_ff"] = c.FeedForwardLength,
                ["n_rot"] = c.RopeDimensions, ["rope_freq_base"] = c.RopeFreqBase, ["rope_freq_scale"] = c.RopeFreqScale,
                ["rope_scaling"] = c.RopeScaling.ToString().ToLowerInvariant(), ["rope_scaling_factor"] = c.RopeScalingFactor,
                ["rope_original_context"] = c.RopeOriginalContext, ["rms_norm_eps"] = c.RmsNormEps,
                ["tied_output"] = c.TiedOutput, ["has_rope_freqs"] = c.HasRopeFreqs,
                ["weight_type"] = c.WeightType.ToString(), ["bos_token_id"] = c.BosTokenId, ["eos_token_id"] = c.EosTokenId,
                ["n_params"] = c.ParameterCount,
            };
        }
        var metadata = new JsonObject();
        foreach (var (key, value) in model.Metadata)
        {
            var entry = new JsonObject { ["type"] = Lower(value.Type) };
            if (value.IsArray)
            {
                entry["element_type"] = Lower(value.ElementType);
                entry["count"] = value.Count;
            }
            entry["value"] = JsonSerializer.SerializeToNode(value.ToPlainObject(maxArray));
            metadata[key] = entry;
        }
        root["metadata"] = metadata;
        var tensors = new JsonArray();
        foreach (var t in model.Tensors)
            tensors.Add(new JsonObject
            {
                ["name"] = t.Name, ["type"] = t.Type.ToString(), ["shape"] = new JsonArray([.. t.Shape.Select(d => (JsonNode)d)]),
                ["offset"] = t.FileOffset, ["size"] = t.SizeBytes,
            });
        root["tensors"] = tensors;
        return root;
    }

    private static string Lower(MetadataType t) => t.ToString().ToLowerInvariant();

    private static void WriteTables(IAnsiConsole console, MomeModel model, int maxArray)
    {
        var file = model.FileInfo;
        var summary = new Table().Title(Markup.Escape(model.Path)).AddColumn("property").AddColumn("value");
        summary.AddRow("GGUF version", file.Version.ToString(CultureInfo.InvariantCulture));
        summary.AddRow("file size", $"{file.FileSize:N0} bytes");
        summary.AddRow("tensors", model.Tensors.Count.ToString(CultureInfo.InvariantCulture));
        if (model.IsLlama)
        {
            var c = model.Config;
            summary.AddRow("parameters", c.ParameterCount.ToString("N0", CultureInfo.InvariantCulture));
            summary.AddRow("vocabulary", c.VocabSize.ToString(CultureInfo.InvariantCulture));
            summary.AddRow("context length", c.ContextLength.ToString(CultureInfo.InvariantCulture));
            summary.AddRow("embedding / layers", $"{c.EmbeddingLength} / {c.LayerCount}");
            summary.AddRow("heads / kv heads / head dim", $"{c.HeadCount} / {c.KvHeadCount} / {c.HeadDim}");
            summary.AddRow("feed-forward", c.FeedForwardLength.ToString(CultureInfo.InvariantCulture));
            summary.AddRow("rope", Markup.Escape($"base {c.RopeFreqBase}, {c.RopeDimensions} dims, scaling {c.RopeScaling.ToString().ToLowerInvariant()} (x{c.RopeScalingFactor})"));
            summary.AddRow("rms eps", c.RmsNormEps.ToString("G", CultureInfo.InvariantCulture));
            summary.AddRow("weights", $"{c.WeightType}{(c.TiedOutput ? ", output tied to embedding" : "")}");
        }
        else
        {
            summary.AddRow("model", "[yellow]not a Llama model: metadata and tensors only[/]");
        }
        console.Write(summary);

        var meta = new Table().Title("metadata").AddColumn("key").AddColumn("type").AddColumn("value");
        foreach (var (key, value) in model.Metadata)
        {
            var type = value.IsArray ? $"{Lower(value.ElementType)}[{value.Count}]" : Lower(value.Type);
            var text = value.ToString();
            if (text.Length > 100) text = text[..97] + "...";
            meta.AddRow(Markup.Escape(key), Markup.Escape(type), Markup.Escape(text));
        }
        console.Write(meta);

        var tensors = new Table().Title("tensors").AddColumn("name").AddColumn("type").AddColumn("shape").AddColumn(new TableColumn("bytes").RightAligned());
        var shown = model.Tensors.Take(Math.Max(maxArray * 4, 32)).ToList();
        foreach (var t in shown)
            tensors.AddRow(Markup.Escape(t.Name), t.Type.ToString(), string.Join(" x ", t.Shape), t.SizeBytes.ToString("N0", CultureInfo.InvariantCulture));
        if (shown.Count < model.Tensors.Count) tensors.Caption($"{model.Tensors.Count - shown.Count} more (use --json)");
        console.Write(tensors);
    }
}
