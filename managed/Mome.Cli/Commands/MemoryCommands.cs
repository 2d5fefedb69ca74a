using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome memory create` and `mome memory info`.</summary>
public static class MemoryCommands
{
    public static Command Create(CliIo io) => new("memory", "Create and inspect memory banks (expert tables attached to a model).")
    {
        CreateCommand(io),
        InfoCommand(io),
    };

    private static Command CreateCommand(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Description = "The base model (GGUF).", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Path of the bank file to write.", Required = true };
        var defaults = new MemoryOptions();
        var experts = new Option<long>("--experts") { Description = "Experts per memory layer.", DefaultValueFactory = _ => defaults.Experts };
        var keyDim = new Option<long>("--key-dim") { Description = "Length of router keys and queries.", DefaultValueFactory = _ => defaults.KeyDim };
        var rank = new Option<int>("--rank") { Description = "Rank of every expert.", DefaultValueFactory = _ => defaults.Rank };
        var topK = new Option<int>("--top-k") { Description = "Experts picked per question.", DefaultValueFactory = _ => defaults.TopK };
        var layers = new Option<string?>("--layers") { Description = "Comma-separated model blocks (default: one at ~3/4 depth)." };
        var routing = new Option<RoutingMode>("--routing") { Description = "sequence or token.", DefaultValueFactory = _ => defaults.Routing };
        var router = new Option<RouterKind>("--router") { Description = "flat or product.", DefaultValueFactory = _ => defaults.Router };
        var weightType = new Option<string>("--weight-type") { Description = "f32, f16 or bf16.", DefaultValueFactory = _ => "f32" };
        weightType.AcceptOnlyFromAmong("f32", "f16", "bf16");
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => defaults.Seed };
        var command = new Command("create", "Create a fresh bank (B = 0: the model is unchanged until tuned).")
        {
            model, output, experts, keyDim, rank, topK, layers, routing, router, weightType, seed,
        };
        command.SetAction(parse => io.Guard(() =>
        {
            using var m = MomeModel.Open(parse.GetValue(model)!.FullName);
            var options = new MemoryOptions
            {
                Layers = ParseLayers(parse.GetValue(layers)), Experts = parse.GetValue(experts), KeyDim = parse.GetValue(keyDim),
                Rank = parse.GetValue(rank), TopK = parse.GetValue(topK), Routing = parse.GetValue(routing),
                Router = parse.GetValue(router), Seed = parse.GetValue(seed),
                WeightType = parse.GetValue(weightType) switch { "f16" => TensorType.F16, "bf16" => TensorType.BF16, _ => TensorType.F32 },
            };
            var path = parse.GetValue(output)!.FullName;
            io.Console.Status().Start("Creating the bank", ctx =>
            {
                using var bank = MemoryBank.Create(m, options);
                ctx.Status($"Saving {bank.SizeBytes / (1024.0 * 1024):N0} MiB to {path}");
                bank.Save(path);
            });
            io.Console.MarkupLineInterpolated($"Wrote [green]{path}[/] ({new FileInfo(path).Length / (1024.0 * 1024):N1} MiB).");
        }));
        return command;
    }

    private static Command InfoCommand(CliIo io)
    {
        var path = new Argument<FileInfo>("bank") { Description = "A bank file." };
        var model = new Option<FileInfo>("--model") { Description = "The base model the bank was made for.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var command = new Command("info", "Show a bank's shape (and check it against its model).") { path, model, json };
        command.SetAction(parse => io.Guard(() =>
        {
            using var m = MomeModel.Open(parse.GetValue(model)!.FullName);
            using var bank = MemoryBank.Load(m, parse.GetValue(path)!.FullName);
            var o = bank.Options;
            var rows = new (string Key, JsonNode Value)[]
            {
                ("layers", new JsonArray([.. o.Layers.Select(l => (JsonNode)l)])), ("experts", o.Experts), ("key_dim", o.KeyDim),
                ("rank", o.Rank), ("top_k", o.TopK), ("temperature", o.Temperature), ("alpha", o.Alpha),
                ("routing", o.Routing.ToString().ToLowerInvariant()), ("router", o.Router.ToString().ToLowerInvariant()),
                ("weight_type", o.WeightType.ToString()), ("seed", o.Seed), ("size_bytes", bank.SizeBytes),
            };
            if (parse.GetValue(json))
            {
                var obj = new JsonObject { ["path"] = parse.GetValue(path)!.FullName, ["model"] = m.Path };
                foreach (var (key, value) in rows) obj[key] = value;
                io.Output.WriteLine(obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return;
            }
            var table = new Table().Title(Markup.Escape(parse.GetValue(path)!.FullName)).AddColumn("property").AddColumn("value");
            foreach (var (key, value) in rows) table.AddRow(key, Markup.Escape(value.ToJsonString()));
            io.Console.Write(table);
        }));
        return command;
    }

    internal static int[] ParseLayers(string? text) =>
        string.IsNullOrWhiteSpace(text)
            ? []
            : text.Split(',', StringSplitOptions.TrimEntries).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l)
                ? l
                : throw new ArgumentException($"--layers: '{s}' is not a layer index")).ToArray();
}
