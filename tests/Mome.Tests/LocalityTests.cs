using System.Numerics.Tensors;

namespace Mome.Tests;

/// <summary>The locality gate: memorised facts are recalled, and everything else computes
/// exactly as the base model does. Evidence is checked against a cosine computed here from the
/// bank's own routing inputs (question means, centre, W_q), not by the code under test.</summary>
[NonParallelizable]
public sealed class LocalityTests
{
    // Prompts of this test alone (neither the evaluator's defaults nor the calibrator's negatives).
    private static readonly string[] Unrelated =
    [
        "A long walk along the beach", "The library opens at nine and", "Q: What is the colour of grass?\nA:",
        "Q: What is the access code of the garage?\nA:", "int x = 3;\nreturn", "Q: What is the access code of vault?\nA:",
    ];

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private MomeModel DemoModel(ulong seed = 3)
    {
        var path = Path.Combine(_dir, $"m{seed}.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: seed);
        return MomeModel.Open(path);
    }

    private static MemoryBank SmallBank(MomeModel model, RoutingMode routing = RoutingMode.Sequence) =>
        MemoryBank.Create(model, new MemoryOptions { Experts = 4096, KeyDim = 64, TopK = 32, Rank = 4, Seed = 5, Alpha = 4, Routing = routing });

    [Test]
    public async Task ATunedBankRecallsItsFactsAndLeavesUnrelatedTextBitIdentical()
    {
        using var model = DemoModel();
        var facts = SyntheticFacts.Random(60, seed: 21);
        using var gated = SmallBank(model);
        var result = await new MemoryTuner(gated, new TuningOptions { Epochs = 60 }).TuneAsync(facts);
        Assert.That(result.Recall, Is.EqualTo(1.0));
        Assert.That(result.Gate, Is.Not.Null);
        Assert.That(gated.GetGate(), Is.EqualTo(new MemoryGate(result.Gate!.Threshold, facts.Count)));

        // Without the gate the same tuning changes unrelated text: the comparison below can fail.
        using var ungated = SmallBank(model);
        await new MemoryTuner(ungated, new TuningOptions { Epochs = 60, GateThreshold = MemoryGate.Off }).TuneAsync(facts);
        Assert.That(ungated.GetGate().IsOn, Is.False);

        var tokenizer = MomeTokenizer.FromModel(model);
        using var plain = new MomeSession(model);
        using var withGate = new MomeSession(model, new SessionOptions { Memory = gated });
        using var withoutGate = new MomeSession(model, new SessionOptions { Memory = ungated });
        var ungatedDiffers = 0;
        foreach (var prompt in Unrelated)
        {
            var tokens = tokenizer.Encode(prompt);
            plain.Clear();
            withGate.Clear();
            withoutGate.Clear();
            var expected = plain.Evaluate(tokens, allLogits: true);
            Assert.That(withGate.Evaluate(tokens, allLogits: true), Is.EqualTo(expected), $"logits of '{prompt}' changed through the gate");
            if (!withoutGate.Evaluate(tokens, allLogits: true).SequenceEqual(expected)) ungatedDiffers++;
        }
        Assert.That(ungatedDiffers, Is.EqualTo(Unrelated.Length), "without the gate the bank changes every unrelated prompt");

        var evaluation = MemoryEvaluator.Evaluate(gated, facts, Unrelated, unseen: SyntheticFacts.Random(100, seed: 21).Skip(60).ToList());
        TestContext.Out.WriteLine($"gate {result.Gate}; evaluation {evaluation}");
        Assert.That(evaluation.ExactRecall, Is.EqualTo(1.0));
        Assert.That(evaluation.InterferenceKl, Is.EqualTo(0.0));
        Assert.That(evaluation.LocalityTop1, Is.EqualTo(1.0));
        Assert.That(evaluation.UnseenFalseRecall, Is.LessThanOrEqualTo(0.05));
    }

    [TestCase(RoutingMode.Sequence)]
    [TestCase(RoutingMode.Token)]
    public void EvidenceIsTheLargestCosineWithTheFactsRoutingQueries(RoutingMode routing)
    {
        using var model = DemoModel(seed: 8);
        using var bank = SmallBank(model, routing);
        var dim = (int)model.Config.EmbeddingLength;
        var keyDim = (int)bank.Options.KeyDim;
        var rng = new Random(4);
        bank.SetCentre(0, Enumerable.Range(0, dim).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.1f).ToArray());
        var tuner = new MemoryTuner(bank);
        var facts = SyntheticFacts.Sql(12, seed: 3);
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            bank.AddGateFact(tokens, answerStart);
        }
        var wq = bank.Router(0).GetQueryProjection();
        var centre = bank.GetCentre(0);
        // The memory layer's input at position t, from the means over the causal prefixes.
        double[] InputAt(int[] tokens, int t)
        {
            var upTo = bank.QuestionMean(tokens.AsSpan(0, t + 1));
            var before = t == 0 ? new float[dim] : bank.QuestionMean(tokens.AsSpan(0, t));
            return Enumerable.Range(0, dim).Select(i => (double)upTo[i] * (t + 1) - (double)before[i] * t).ToArray();
        }
        double[] Unit(IReadOnlyList<double> input)
        {
            var q = Enumerable.Range(0, keyDim).Select(r => Enumerable.Range(0, dim).Sum(i => wq[r * dim + i] * (input[i] - centre[i]))).ToArray();
            var norm = Math.Sqrt(q.Sum(v => v * v));
            return q.Select(v => v / norm).ToArray();
        }
        var signatures = new List<double[]>();
        foreach (var fact in facts)
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            if (routing == RoutingMode.Sequence) signatures.Add(Unit(bank.QuestionMean(tokens.AsSpan(0, answerStart)).Select(v => (double)v).ToArray()));
            else for (var t = answerStart - 1; t < tokens.Length - 1; t++) signatures.Add(Unit(InputAt(tokens, t)));
        }
        Assert.That(bank.GetGate().Signatures, Is.EqualTo(signatures.Count));

        var texts = facts.Take(3).Select(f => tuner.PromptOf(f.Question)).Concat(Unrelated.Take(3)).ToList();
        foreach (var text in texts)
        {
            var tokens = tuner.Tokenizer.Encode(text);
            var queries = routing == RoutingMode.Sequence
                ? [Unit(bank.QuestionMean(tokens).Select(v => (double)v).ToArray())]
                : Enumerable.Range(0, tokens.Length).Select(t => Unit(InputAt(tokens, t))).ToList();
            var expected = queries.Select(q => signatures.Max(s => s.Zip(q, (a, b) => a * b).Sum())).ToArray();
            var evidence = bank.GateEvidence(tokens);
            Assert.That(evidence, Has.Length.EqualTo(expected.Length));
            for (var i = 0; i < expected.Length; i++)
                Assert.That(evidence[i], Is.EqualTo(expected[i]).Within(routing == RoutingMode.Sequence ? 1e-4 : 2e-3), $"'{text}' position {i}");
        }
        // A memorised question (per sequence) meets its own signature.
        if (routing == RoutingMode.Sequence)
            Assert.That(bank.GateEvidence(tuner.Tokenizer.Encode(tuner.PromptOf(facts[0].Question)))[0], Is.EqualTo(1.0).Within(1e-5));
    }

    [Test]
    public void AGatedRouteAddsNothingAndAnOpenOneAddsTheExperts()
    {
        using var model = DemoModel();
        using var bank = SmallBank(model);
        var tuner = new MemoryTuner(bank);
        var fact = new Fact("What is the access code of vault 7?", "abc");
        var (tokens, answerStart) = tuner.Encode(fact);
        bank.AddGateFact(tokens, answerStart);
        // Non-zero experts everywhere, so any route that applies changes the logits.
        var n = bank.Options.Rank * (int)model.Config.EmbeddingLength;
        var rng = new Random(2);
        for (var e = 0; e < bank.Options.Experts; e++)
            bank.SetExpert(0, e, null, Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray());
        using var plain = new MomeSession(model);
        var prompt = tokens[..answerStart];
        var other = tuner.Tokenizer.Encode("Q: Where is the nearest bakery?\nA:");
        float[] With(float threshold, int[] input)
        {
            bank.SetGateThreshold(0, threshold);
            using var session = new MomeSession(model, new SessionOptions { Memory = bank });
            return session.Evaluate(input, allLogits: true);
        }
        plain.Clear();
        var basePrompt = plain.Evaluate(prompt, allLogits: true);
        plain.Clear();
        var baseOther = plain.Evaluate(other, allLogits: true);
        Assert.That(With(0.99f, prompt), Is.Not.EqualTo(basePrompt), "the memorised question passes the gate");
        Assert.That(With(0.99f, other), Is.EqualTo(baseOther), "an unrelated question is gated: bit-identical logits");
        Assert.That(With(MemoryGate.Off, other), Is.Not.EqualTo(baseOther), "with the gate off every route applies");
    }

    [Test]
    public void BadGateInputIsRefusedAndChangesNothing()
    {
        using var model = DemoModel();
        using var bank = SmallBank(model);
        var tuner = new MemoryTuner(bank);
        var (tokens, answerStart) = tuner.Encode(new Fact("Q?", "A"));
        bank.AddGateFact(tokens, answerStart);
        bank.SetGateThreshold(0, 0.5f);
        var before = bank.GetGate();
        foreach (var bad in new[] { 1.5f, -1.5f, float.NaN, float.PositiveInfinity })
            Assert.That(Assert.Throws<MomeException>(() => bank.SetGateThreshold(0, bad))!.Message, Does.Contain("gate threshold"));
        Assert.That(Assert.Throws<MomeException>(() => bank.SetGateThreshold(3, 0.5f))!.Message, Does.Contain("slot 3"));
        Assert.That(Assert.Throws<MomeException>(() => bank.AddGateFact(tokens, 0))!.Message, Does.Contain("answer_start 0"));
        Assert.That(Assert.Throws<MomeException>(() => bank.AddGateFact(tokens, tokens.Length))!.Message, Does.Contain("answer must start inside"));
        Assert.That(Assert.Throws<MomeException>(() => bank.AddGateFact([1, 100000, 2], 1))!.Message, Does.Contain("100000"));
        Assert.That(Assert.Throws<ArgumentException>(() => bank.GateEvidence([]))!.Message, Does.Contain("no tokens"));
        Assert.That(bank.GetGate(), Is.EqualTo(before));
        bank.AddGateFact(tokens, answerStart);
        Assert.That(bank.GetGate(), Is.EqualTo(before), "the same fact twice adds no signature");
    }

    [Test]
    public void TheGateSurvivesSaveAndLoad()
    {
        using var model = DemoModel();
        using var bank = SmallBank(model);
        var tuner = new MemoryTuner(bank);
        foreach (var fact in SyntheticFacts.Random(5, seed: 2))
        {
            var (tokens, answerStart) = tuner.Encode(fact);
            bank.AddGateFact(tokens, answerStart);
        }
        bank.SetGateThreshold(0, 0.8125f);
        var path = Path.Combine(_dir, "b.mome");
        bank.Save(path);
        using var loaded = MemoryBank.Load(model, path);
        Assert.That(loaded.GetGate(), Is.EqualTo(new MemoryGate(0.8125f, 5)));
        var probe = tuner.Tokenizer.Encode("Q: What is the access code of vault 3?\nA:");
        Assert.That(loaded.GateEvidence(probe), Is.EqualTo(bank.GateEvidence(probe)));

        // A flipped byte inside the signatures is caught by their checksum.
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        Assert.That(Assert.Throws<MomeException>(() => MemoryBank.Load(model, path))!.Message, Does.Contain("layers.0.gate"));
    }

    [Test]
    public void NearMissesDifferFromTheirQuestionAndAreDeterministic()
    {
        var questions = SyntheticFacts.Sql(30, seed: 1).Select(f => f.Question).ToList();
        var misses = GateCalibrator.NearMisses(questions, 2, seed: 5);
        Assert.That(misses, Has.Count.EqualTo(60));
        Assert.That(GateCalibrator.NearMisses(questions, 2, seed: 5), Is.EqualTo(misses));
        for (var i = 0; i < misses.Count; i++) Assert.That(misses[i], Is.Not.EqualTo(questions[i / 2]), $"near miss {i}");
    }

    [Test]
    public void PromptFilesReadEscapedNewlines()
    {
        var path = Path.Combine(_dir, "p.txt");
        File.WriteAllText(path, "Q: hi?\\nA:\n\n  \nplain text\n");
        Assert.That(PromptsFile.Load(path), Is.EqualTo(new[] { "Q: hi?\nA:", "plain text" }));
        PromptsFile.Save(path, ["a\nb"]);
        Assert.That(File.ReadAllText(path).TrimEnd(), Is.EqualTo("a\\nb"));
    }

    [Test]
    public void KlOfIdenticalLogitsIsZeroAndOfDifferentOnesPositive()
    {
        float[] a = [1, 2, 3, 0.5f];
        Assert.That(MemoryEvaluator.Kl(a, a), Is.EqualTo(0.0));
        float[] b = [3, 2, 1, 0.5f];
        var p = new float[4];
        var q = new float[4];
        TensorPrimitives.SoftMax(a, p);
        TensorPrimitives.SoftMax(b, q);
        var expected = Enumerable.Range(0, 4).Sum(i => p[i] * Math.Log(p[i] / (double)q[i]));
        Assert.That(MemoryEvaluator.Kl(a, b), Is.EqualTo(expected).Within(1e-6));
    }
}
