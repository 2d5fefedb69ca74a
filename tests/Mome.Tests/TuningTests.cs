namespace Mome.Tests;

/// <summary>Memory tuning end to end: a small synthetic model memorises random-string facts
/// to exact recall, judged by greedy generation through an ordinary session.</summary>
[NonParallelizable]
public sealed class TuningTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task HundredRandomFactsAreRecalledExactly()
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 3);
        using var model = MomeModel.Open(path);
        using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 4096, KeyDim = 64, TopK = 32, Rank = 4, Seed = 5, Alpha = 4 });
        var facts = SyntheticFacts.Random(100, seed: 11);
        var tuner = new MemoryTuner(bank, new TuningOptions { Epochs = 60, LearningRate = 0.1f });
        var log = new List<TuningProgress>();
        var result = await tuner.TuneAsync(facts, new Progress<TuningProgress>(log.Add));
        TestContext.Out.WriteLine($"epochs {result.Epochs}, recall {result.Recall:P1}, loss {result.Loss:F4}, {result.Elapsed}");
        Assert.That(result.Recall, Is.EqualTo(1.0));
        Assert.That(log, Is.Not.Empty);
        Assert.That(log[^1].Memorised, Is.EqualTo(100));

        // Independent check: greedy generation in a session with the tuned bank.
        using var session = new MomeSession(model, new SessionOptions { ContextLength = 128, Memory = bank });
        var exact = 0;
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            session.Clear();
            var logits = session.Evaluate(tokens[..answerStart]);
            var generated = new List<int>();
            for (var i = answerStart; i < tokens.Length; i++)
            {
                var next = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
                generated.Add(next);
                if (next != tokens[i]) break;
                logits = session.Evaluate([next]);
            }
            if (generated.SequenceEqual(tokens[answerStart..])) exact++;
        }
        Assert.That(exact, Is.EqualTo(facts.Count));
    }
}
