using System.CommandLine;
using Spectre.Console;

namespace Mome.Cli.Commands;

/// <summary>`mome demo`: the whole story on a small synthetic model in a few minutes.</summary>
public static class DemoCommand
{
    public static Command Create(CliIo io)
    {
        var count = new Option<int>("--facts") { Description = "How many random facts to memorise.", DefaultValueFactory = _ => 200 };
        var command = new Command("demo", "Create a small model and 200 facts (cached), show recall before, tune, show recall after.") { count };
        command.SetAction((parse, cancellationToken) => io.GuardAsync(async () =>
        {
            var folder = Path.Combine(ModelCache.Folder, "demo");
            Directory.CreateDirectory(folder);
            var modelPath = Path.Combine(folder, "model.gguf");
            var factsPath = Path.Combine(folder, $"facts-{parse.GetValue(count)}.jsonl");
            var bankPath = Path.Combine(folder, "bank.mome");
            if (!File.Exists(modelPath))
                MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, modelPath, seed: 3);
            if (!File.Exists(factsPath)) FactsFile.Save(factsPath, SyntheticFacts.Random(parse.GetValue(count), seed: 11));
            var facts = FactsFile.Load(factsPath);
            io.Console.Write(new Rule("[bold]Mome demo[/]: teach a frozen model facts it cannot guess"));
            io.Console.MarkupLineInterpolated($"model [grey]{modelPath}[/]\nfacts [grey]{factsPath}[/] ({facts.Count} questions with random 32-character answers)");

            using var model = MomeModel.Open(modelPath);
            using var bank = MemoryBank.Create(model, MemoryOptions.ForTuning(model.Config));
            var before = MemoryEvaluator.Evaluate(bank, facts, []);
            io.Console.MarkupLineInterpolated($"before tuning: exact recall [red]{before.ExactRecall:P1}[/], token accuracy {before.TokenAccuracy:P1}");

            var result = await TuningCommands.Tune(io, bank, facts, new TuningOptions { Epochs = 60, CheckpointPath = bankPath }, cancellationToken);
            var after = MemoryEvaluator.Evaluate(bank, facts);
            io.Console.MarkupLineInterpolated(
                $"after {result.Epochs} epochs ({result.Elapsed.TotalSeconds:F0} s): exact recall [green]{after.ExactRecall:P1}[/], token accuracy {after.TokenAccuracy:P1}");
            io.Console.MarkupLineInterpolated(
                $"unrelated prompts: KL {after.InterferenceKl:G3} nats, greedy token unchanged at {after.LocalityTop1:P1} of {after.UnrelatedPositions} positions (locality gate threshold {bank.GetGate().Threshold:F3})");
            var table = new Table().AddColumns("question", "expected", "answer (greedy, with the bank)");
            foreach (var fact in facts.Take(3))
                table.AddRow(Markup.Escape(fact.Question), Markup.Escape(fact.Answer), Markup.Escape(TuningCommands.Ask(bank, fact.Question)));
            io.Console.Write(table);
            if (after.ExactRecall < 1)
                throw new CliFailure($"the demo recalled only {after.ExactRecall:P1} of its facts after {result.Epochs} epochs (it should reach 100%)");
            io.Console.MarkupLineInterpolated($"bank saved to [green]{bankPath}[/]; ask it with:\n  mome ask --model {modelPath} --memory {bankPath} \"{facts[0].Question}\"");
        }));
        return command;
    }
}
