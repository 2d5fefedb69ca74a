using System.CommandLine;

namespace Mome.Cli.Commands;

/// <summary>`mome facts synth`: synthetic facts as JSONL.</summary>
public static class FactsCommands
{
    public static Command Create(CliIo io) => new("facts", "Make and check facts files (JSONL of question/answer).") { SynthCommand(io) };

    private static Command SynthCommand(CliIo io)
    {
        var kind = new Option<string>("--kind") { Description = "random (32-character random answers) or sql (schema facts).", DefaultValueFactory = _ => "random" };
        kind.AcceptOnlyFromAmong("random", "sql");
        var count = new Option<int>("--count") { Description = "Number of facts.", DefaultValueFactory = _ => 100 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 42 };
        var output = new Option<FileInfo?>("--out") { Description = "Write here instead of standard output." };
        var command = new Command("synth", "Generate synthetic facts.") { kind, count, seed, output };
        command.SetAction(parse => io.Guard(() =>
        {
            if (parse.GetValue(count) < 1) throw new ArgumentException("--count must be at least 1");
            var facts = parse.GetValue(kind) == "sql"
                ? SyntheticFacts.Sql(parse.GetValue(count), parse.GetValue(seed))
                : SyntheticFacts.Random(parse.GetValue(count), parse.GetValue(seed));
            if (parse.GetValue(output) is { } file)
            {
                FactsFile.Save(file.FullName, facts);
                io.Error.WriteLine($"wrote {facts.Count} facts to {file.FullName}");
            }
            else
            {
                foreach (var f in facts)
                    io.Output.WriteLine(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["question"] = f.Question, ["answer"] = f.Answer }));
            }
        }));
        return command;
    }
}
