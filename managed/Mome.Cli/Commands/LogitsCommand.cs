using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Mome.Cli.Commands;

/// <summary>`mome logits`: the logits of every position for given token ids, for checking
/// Mome against another implementation.</summary>
public static class LogitsCommand
{
    public static Command Create(CliIo io)
    {
        var model = new Option<FileInfo>("--model") { Description = "A Llama GGUF model.", Required = true };
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 1,5,9.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print {\"tokens\":[...],\"logits\":[[...],...]} (the only output format today)." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0: one per core).", DefaultValueFactory = _ => 0 };
        var engine = new EngineOptions();
        var command = new Command("logits", "Print the logits of every position of a token sequence.") { model, tokens, json, threads };
        engine.AddTo(command);
        command.SetAction(parse => io.Guard(() =>
        {
            var ids = ParseTokens(parse.GetValue(tokens)!);
            var options = new SessionOptions { ContextLength = Math.Max(ids.Length, 1), Threads = parse.GetValue(threads) };
            using var opened = engine.Open(parse, io, parse.GetValue(model)!.FullName, options);
            var logits = opened.Session.Evaluate(ids, allLogits: true);
            Write(io.Output, ids, logits, opened.Session.VocabSize);
        }));
        return command;
    }

    internal static int[] ParseTokens(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--tokens is empty: give at least one token id");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new ArgumentException($"--tokens: '{p}' is not a token id")).ToArray();
    }

    private static void Write(TextWriter output, int[] ids, float[] logits, int vocab)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("tokens");
            foreach (var id in ids) writer.WriteNumberValue(id);
            writer.WriteEndArray();
            writer.WriteStartArray("logits");
            for (var t = 0; t < ids.Length; t++)
            {
                writer.WriteStartArray();
                for (var v = 0; v < vocab; v++) writer.WriteNumberValue(logits[(long)t * vocab + v]);
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
