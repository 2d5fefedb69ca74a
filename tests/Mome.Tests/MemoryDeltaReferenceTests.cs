namespace Mome.Tests;

/// <summary>
/// The memory layer's delta, alpha / r * sum_j w_j B_j (A_j u_t), against the plain reference
/// of <see cref="MemoryReference"/>: through the grouped-LoRA operator on the bank's own experts,
/// and through a whole session over a model whose only block is the memory layer and otherwise
/// the identity (zero attention and MLP weights), so that every logit is written out in the
/// test: x_t = embedding_t + delta_t, logits_t = E RMSNorm(x_t) (tied output).
/// </summary>
public sealed class MemoryDeltaReferenceTests
{
    private const int Embd = 16, Vocab = 32;
    private const float Eps = 1e-5f;

    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static float[] RandomFloats(Random random, int n, double low, double high) =>
        [.. Enumerable.Range(0, n).Select(_ => (float)(low + (high - low) * random.NextDouble()))];

    private static byte[] Bytes(float[] values) => [.. values.SelectMany(BitConverter.GetBytes)];

    private static double[] RmsNorm(ReadOnlySpan<double> x, float[] gain)
    {
        double ms = 0;
        foreach (var v in x) ms += v * v;
        var inv = 1 / Math.Sqrt(ms / x.Length + Eps);
        var y = new double[x.Length];
        for (var i = 0; i < x.Length; i++) y[i] = x[i] * inv * gain[i];
        return y;
    }

    /// <summary>Random experts in every slot, so that any route adds something.</summary>
    private static void FillExperts(MemoryBank bank, Random random)
    {
        var n = bank.Options.Rank * Embd;
        for (var e = 0; e < bank.Options.Experts; e++) bank.SetExpert(0, e, RandomFloats(random, n, -0.5, 0.5), RandomFloats(random, n, -0.5, 0.5));
    }

    [Test]
    public void ASessionsLogitsAreTheEmbeddingPlusTheReferenceDeltaNormalisedAndProjected()
    {
        var random = new Random(23);
        var embedding = RandomFloats(random, Vocab * Embd, -1, 1);
        var ffnNorm = RandomFloats(random, Embd, 0.5, 1.5);
        var outputNorm = RandomFloats(random, Embd, 0.5, 1.5);
        var path = Path.Combine(_dir, "identity-block.gguf");
        File.WriteAllBytes(path, GgufBuilder.TinyLlama(embd: Embd, ff: 16, vocab: Vocab, heads: 2)
            .Drop("token_embd.weight").Tensor("token_embd.weight", 0, [Embd, Vocab], Bytes(embedding))
            .Drop("blk.0.ffn_norm.weight").Tensor("blk.0.ffn_norm.weight", 0, [Embd], Bytes(ffnNorm))
            .Drop("output_norm.weight").Tensor("output_norm.weight", 0, [Embd], Bytes(outputNorm))
            .Build());
        using var model = MomeModel.Open(path);
        var options = new MemoryOptions
        {
            Layers = [0], Experts = 256, KeyDim = 8, TopK = 8, Rank = 2, Alpha = 3, Temperature = 0.7f, Seed = 5,
        };
        using var bank = MemoryBank.Create(model, options);
        FillExperts(bank, random);
        bank.SetCentre(0, RandomFloats(random, Embd, -0.3, 0.3));

        int[] tokens = [1, 5, 9, 13, 30];
        using var session = new MomeSession(model, new SessionOptions { ContextLength = 8, Memory = bank, Threads = 1 });
        var logits = session.Evaluate(tokens, allLogits: true);

        double[] Embedded(int token) => [.. embedding.AsSpan(token * Embd, Embd).ToArray().Select(x => (double)x)];
        var u = tokens.Select(t => RmsNorm(Embedded(t), ffnNorm)).ToArray();
        var mean = Enumerable.Range(0, Embd).Select(i => (float)u.Average(row => row[i])).ToArray();
        Assert.That(bank.QuestionMean(tokens), Is.EqualTo(mean).Within(1e-5), "the memory layer's input is RMSNorm_ffn(embedding)");
        var ranked = MemoryReference.RankExperts(bank, mean);
        var experts = ranked.Take(options.TopK).Select(x => x.Index).ToArray();
        var weights = MemoryReference.Weights(ranked, options.TopK, options.Temperature);
        double worst = 0, deltaShows = double.MaxValue;
        for (var t = 0; t < tokens.Length; t++)
        {
            var delta = MemoryReference.Delta(bank, u[t], experts, weights, options.Alpha / (double)options.Rank);
            var x = Embedded(tokens[t]).Select((e, i) => e + delta[i]).ToArray();
            var normed = RmsNorm(x, outputNorm);
            var baseNormed = RmsNorm(Embedded(tokens[t]), outputNorm);
            double err = 0, norm = 0, shift = 0;
            for (var v = 0; v < Vocab; v++)
            {
                double expected = 0, baseline = 0;
                for (var i = 0; i < Embd; i++)
                {
                    expected += embedding[v * Embd + i] * normed[i];
                    baseline += embedding[v * Embd + i] * baseNormed[i];
                }
                err += Math.Pow(logits[t * Vocab + v] - expected, 2);
                norm += expected * expected;
                shift += Math.Pow(expected - baseline, 2);
            }
            worst = Math.Max(worst, Math.Sqrt(err / norm));
            deltaShows = Math.Min(deltaShows, Math.Sqrt(shift / norm));
        }
        TestContext.Out.WriteLine($"largest relative logit error {worst:E2}; the delta moves the logits by >= {deltaShows:E2} (relative)");
        Assert.That(deltaShows, Is.GreaterThan(0.05), "the delta is large enough for the comparison to see it");
        Assert.That(worst, Is.LessThan(1e-5), "the session's logits equal the reference's");
    }

    [Test]
    public void TheGroupedLoraOperatorOnTheBanksExpertsEqualsTheReferenceSum()
    {
        var random = new Random(29);
        var path = Path.Combine(_dir, "m.gguf");
        File.WriteAllBytes(path, GgufBuilder.TinyLlama(embd: Embd, ff: 16, vocab: Vocab, heads: 2).Build());
        using var model = MomeModel.Open(path);
        var options = new MemoryOptions { Layers = [0], Experts = 64, KeyDim = 8, TopK = 4, Rank = 3, Alpha = 2 };
        using var bank = MemoryBank.Create(model, options);
        FillExperts(bank, random);
        var experts = Enumerable.Range(0, (int)options.Experts).Select(e => bank.GetExpert(0, e)).ToArray();
        var tables = new LoraTables(TensorType.F32, options.Experts, Embd, options.Rank,
            Bytes([.. experts.SelectMany(x => x.A)]), Bytes([.. experts.SelectMany(x => x.B)]));

        const int tokens = 5;
        long[] segments = [0, 2, 5]; // two sequences: tokens 0-1 and 2-4
        int[] indices = [3, 17, 40, 63, 0, 17, 9, 52];
        float[] weights = [0.4f, 0.3f, 0.2f, 0.1f, 0.7f, 0.1f, 0.15f, 0.05f];
        var u = RandomFloats(random, tokens * Embd, -1, 1);
        var output = RandomFloats(random, tokens * Embd, -1, 1);
        var before = (float[])output.Clone();
        var scale = options.Alpha / (float)options.Rank;
        MomeOps.LoraApply(tables, u, tokens, segments, indices, weights, options.TopK, scale, output, threads: 1);

        for (var t = 0; t < tokens; t++)
        {
            var s = t < 2 ? 0 : 1;
            var k = options.TopK;
            var delta = MemoryReference.Delta(bank, [.. u.AsSpan(t * Embd, Embd).ToArray().Select(x => (double)x)],
                indices[(s * k)..((s + 1) * k)], [.. weights[(s * k)..((s + 1) * k)].Select(w => (double)w)], scale);
            for (var i = 0; i < Embd; i++)
                Assert.That(output[t * Embd + i], Is.EqualTo(before[t * Embd + i] + delta[i]).Within(1e-5 * (1 + Math.Abs(delta[i]))),
                    $"token {t}, element {i}: out += scale * sum_j w_j B_j (A_j u)");
        }
    }
}
