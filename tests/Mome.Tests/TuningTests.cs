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

    // Facts whose answer (and end of sequence) a session with the bank decodes greedily, token
    // by token, from the question alone.
    private static int RecalledByGreedyDecoding(MomeModel model, MemoryBank bank, MemoryTuner tuner, IEnumerable<Fact> facts)
    {
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
        return exact;
    }

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
        var result = await tuner.TuneAsync(facts, new InlineProgress<TuningProgress>(log.Add));
        TestContext.Out.WriteLine($"epochs {result.Epochs}, recall {result.Recall:P1}, loss {result.Loss:F4}, {result.Elapsed}");
        Assert.That(result.Recall, Is.EqualTo(1.0));
        Assert.That(log, Is.Not.Empty);
        Assert.That(log[^1].Memorised, Is.EqualTo(100));

        // Independent check: greedy generation in a session with the tuned bank.
        Assert.That(RecalledByGreedyDecoding(model, bank, tuner, facts), Is.EqualTo(facts.Count));
    }

    [Test]
    public async Task ABankWithTwoMemoryLayersIsTunedToExactRecall()
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 4);
        using var model = MomeModel.Open(path);
        using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 4096, KeyDim = 64, TopK = 32, Rank = 4, Seed = 6, Alpha = 4, Layers = [0, 1] });
        var facts = SyntheticFacts.Random(60, seed: 12);
        var tuner = new MemoryTuner(bank, new TuningOptions { Epochs = 60, LearningRate = 0.1f });
        var result = await tuner.TuneAsync(facts);
        TestContext.Out.WriteLine($"epochs {result.Epochs}, recall {result.Recall:P1}, touched {result.TouchedExperts}");
        Assert.That(result.Recall, Is.EqualTo(1.0));
        Assert.That(result.TouchedExperts, Is.GreaterThan(60 * 32), "experts of both layers learned (one layer has at most 32 per fact)");
        Assert.That(RecalledByGreedyDecoding(model, bank, tuner, facts), Is.EqualTo(facts.Count));
        Assert.That(MemoryEvaluator.Evaluate(bank, facts).ExactRecall, Is.EqualTo(1.0));

        using var reversed = MemoryBank.Create(model, new MemoryOptions { Experts = 64, KeyDim = 16, TopK = 4, Rank = 2, Layers = [1, 0] });
        Assert.Throws<ArgumentException>(() => _ = new MemoryTuner(reversed), "the lowest layer goes in slot 0");
        Assert.Throws<ArgumentException>(() => _ = new MemoryTuner(bank, new TuningOptions { GateThreshold = 0.5f }), "no gate for several layers");
    }

    [Test]
    public async Task HundredRandomFactsAreRecalledExactlyOnAQ4KMBase()
    {
        // The frozen base is llama.cpp's Q4_K_M quantization of a 256-wide model: the forward
        // pass multiplies quantized blocks, the backward uses the dequantized weights.
        var path = QuantizedOracleTests.QuantizedModel(_dir, QuantizedOracleTests.Wide with { InitStd = 0.1f }, 3, LLama.Native.LLamaFtype.MOSTLY_Q4_K_M);
        using var model = MomeModel.Open(path);
        Assert.That(model.Tensors.Single(t => t.Name == "blk.0.ffn_up.weight").Type, Is.EqualTo(TensorType.Q4_K));
        using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 4096, KeyDim = 64, TopK = 32, Rank = 4, Seed = 5, Alpha = 4 });
        var facts = SyntheticFacts.Random(100, seed: 11);
        var tuner = new MemoryTuner(bank, new TuningOptions { Epochs = 60, LearningRate = 0.1f });
        var result = await tuner.TuneAsync(facts);
        TestContext.Out.WriteLine($"Q4_K_M base: epochs {result.Epochs}, recall {result.Recall:P1}, loss {result.Loss:F4}, {result.Elapsed}");
        Assert.That(result.Recall, Is.EqualTo(1.0));

        // Independent check: greedy generation in a session with the tuned bank.
        Assert.That(RecalledByGreedyDecoding(model, bank, tuner, facts), Is.EqualTo(facts.Count));
    }

    [Test]
    public async Task AnAnswerLongerThanTheContextIsRefusedBeforeAnyUpdate()
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { ContextLength = 64 }, path, seed: 3);
        using var model = MomeModel.Open(path);
        using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 256, KeyDim = 16, TopK = 8 });
        var before = bank.GetExpert(0, 0);
        var facts = new[] { new Fact("short?", "yes"), new Fact("long?", string.Join(' ', Enumerable.Repeat("word", 100))) };
        var e = (await Assert.ThrowsAsync<ArgumentException>(() => new MemoryTuner(bank).TuneAsync(facts)))!;
        Assert.That(e.Message, Does.Contain("fact 2").And.Contain("context holds 64"));
        Assert.That(bank.GetExpert(0, 0), Is.EqualTo(before), "nothing was trained");
    }

    [Test]
    public async Task CancellingMidEpochStopsAndLeavesAUsableBank()
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 3);
        using var model = MomeModel.Open(path);
        using var bank = MemoryBank.Create(model, new MemoryOptions { Experts = 1024, KeyDim = 32, TopK = 16, Rank = 2, Alpha = 4 });
        using var cancel = new CancellationTokenSource();
        var epochs = 0;
        // Cancelled from the tuning thread itself once the second epoch reports (a timer could
        // fire only after a fast run has finished on a loaded machine).
        var tuning = new MemoryTuner(bank, new TuningOptions { BatchSize = 4 }).TuneAsync(SyntheticFacts.Random(200, seed: 1),
            new InlineProgress<TuningProgress>(p =>
            {
                epochs = p.Epoch;
                if (p.Epoch == 2) cancel.Cancel();
            }), cancel.Token);
        await Assert.CatchAsync<OperationCanceledException>(() => tuning);
        Assert.That(epochs, Is.LessThan(40), "stopped before the epoch budget");
        var saved = Path.Combine(_dir, "bank.mome");
        bank.Save(saved);
        using var reloaded = MemoryBank.Load(model, saved);
        using var session = new MomeSession(model, new SessionOptions { ContextLength = 32, Memory = reloaded });
        Assert.That(session.Evaluate([1, 50, 60]).All(float.IsFinite), Is.True);
    }
}
