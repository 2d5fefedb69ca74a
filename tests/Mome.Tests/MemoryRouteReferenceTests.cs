namespace Mome.Tests;

/// <summary>The route a fact takes through the memory layer against a plain reference
/// (<see cref="MemoryReference"/>) from the bank's own tables, sharing none of the routing code: q = W_q (mean(u) - centre)
/// with u the memory layer's input over the question, every expert's score q.k / sqrt(d_k) in
/// double, the top k best first (ties to the lower index) and their weights
/// softmax(score / temperature).</summary>
public sealed class MemoryRouteReferenceTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [TestCase(RouterKind.Flat)]
    [TestCase(RouterKind.Product)]
    public void FactRouteEqualsTheReferenceFromTheBanksTables(RouterKind kind)
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { InitStd = 0.25f }, path, seed: 3);
        using var model = MomeModel.Open(path);
        var options = new MemoryOptions { Experts = 1024, KeyDim = 32, TopK = 16, Rank = 2, Alpha = 4, Temperature = 0.6f, Router = kind, Seed = 9 };
        using var bank = MemoryBank.Create(model, options);
        var d = (int)model.Config.EmbeddingLength;
        var random = new Random(17);
        var centre = Enumerable.Range(0, d).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        bank.SetCentre(0, centre);
        foreach (var (tokens, answerStart) in new[] { (new[] { 1, 40, 41, 42, 43, 44, 60, 61, 62 }, 6), (new[] { 1, 7, 70, 3, 90, 91 }, 4) })
        {
            var ranked = MemoryReference.RankExperts(bank, bank.QuestionMean(tokens.AsSpan(0, answerStart)));
            double Score(long e) => ranked.First(x => x.Index == e).Score;
            var k = options.TopK;
            var weights = MemoryReference.Weights(ranked, k, options.Temperature);

            var step = bank.FactBackward(tokens, answerStart, route: null, routerGradients: false, threads: 1);
            const double near = 1e-4;
            for (var j = 0; j < k; j++)
            {
                var s = ranked[j].Score;
                Assert.That(Score(step.Indices[j]), Is.EqualTo(s).Within(near * (1 + Math.Abs(s))), $"the score of the expert routed at rank {j}");
                Assert.That(step.Weights[j], Is.EqualTo(weights[j]).Within(1e-5), $"the weight at rank {j}");
                var clear = (j == 0 || ranked[j - 1].Score - s > near * (1 + Math.Abs(s))) && s - ranked[j + 1].Score > near * (1 + Math.Abs(s));
                if (clear) Assert.That(step.Indices[j], Is.EqualTo(ranked[j].Index), $"the expert at rank {j}");
            }
            Assert.That(step.Weights.Max() - step.Weights.Min(), Is.GreaterThan(1e-3), "the weights differ, so the temperature shows");
        }
    }
}
