using LLama;
using LLama.Common;
using LLama.Native;
using Mome.Engines;
using Mome.Ilgpu;

namespace Mome.Tests;

/// <summary>
/// Mome's forward pass against llama.cpp (ORACLE.md settings: F32 KV cache, flash attention
/// off, one thread) on synthetic models of several shapes, and against itself across
/// batching and decode steps; written once, run on every engine.
/// </summary>
[NonParallelizable]
[TestFixture(EngineKind.Native)]
[TestFixture(EngineKind.Ilgpu)]
public sealed class ForwardOracleTests(EngineKind engine)
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    public static IEnumerable<TestCaseData> Shapes()
    {
        // Weights large enough that attention is peaked and logits spread: a wrong RoPE, mask or
        // head grouping moves them far beyond the tolerance.
        var tiny = SyntheticModelConfig.Preset("tiny") with { ContextLength = 512, InitStd = 0.25f };
        foreach (var length in new[] { 1, 7, 200 })
            yield return new TestCaseData(tiny, length, 1e-4).SetName($"F32, GQA 4/2, {length} tokens");
        yield return new TestCaseData(tiny with { WeightType = TensorType.F16 }, 7, 2e-2).SetName("F16 weights, 7 tokens");
        yield return new TestCaseData(tiny with { WeightType = TensorType.F16, TiedOutput = true }, 200, 2e-2).SetName("F16 weights, tied output, 200 tokens");
        yield return new TestCaseData(tiny with { WeightType = TensorType.BF16 }, 7, 2e-2).SetName("BF16 weights, 7 tokens");
        yield return new TestCaseData(tiny with { EmbeddingLength = 48, HeadCount = 6, KvHeadCount = 2, HeadDim = 12, TiedOutput = true }, 7, 1e-4)
            .SetName("head_dim * n_head != n_embd (key_length), GQA 6/2, tied");
        yield return new TestCaseData(tiny with { KvHeadCount = 1, HeadDim = 24 }, 200, 1e-4).SetName("GQA 4/1, non-square, 200 tokens");
        yield return new TestCaseData(tiny with
        {
            RopeFreqBase = 500000, RopeScaling = RopeScaling.Llama3, RopeScalingFactor = 8, RopeOriginalContext = 64,
        }, 200, 1e-4).SetName("rope base 500000 with llama3 scaling, 200 tokens");
        yield return new TestCaseData(tiny with { RopeScaling = RopeScaling.Linear, RopeScalingFactor = 4 }, 200, 1e-4)
            .SetName("linear rope scaling, 200 tokens");
    }

    internal static int[] RandomTokens(int count, long vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(3, (int)vocab)).ToArray();
    }

    /// <summary>llama.cpp's logits for every position of one sequence.</summary>
    /// <summary>llama.cpp's settings for a tight oracle (ORACLE.md).</summary>
    internal static ModelParams OracleParams(string path) => new(path)
    {
        ContextSize = 512, BatchSize = 512, UBatchSize = 512, GpuLayerCount = 0, Threads = 1, BatchThreads = 1,
        FlashAttention = false, TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
    };

    internal static float[][] LlamaCppLogits(string path, int[] tokens)
    {
        var parameters = OracleParams(path);
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (var i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, true);
        Assert.That(context.NativeHandle.Decode(batch), Is.EqualTo(DecodeResult.Ok));
        return Enumerable.Range(0, tokens.Length).Select(i => context.NativeHandle.GetLogitsIth(i).ToArray()).ToArray();
    }

    internal static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length));
        double max = 0;
        for (var i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    [TestCaseSource(nameof(Shapes))]
    public void LogitsMatchLlamaCpp(SyntheticModelConfig config, int length, double tolerance)
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(config, path, seed: 3);
        var tokens = RandomTokens(length, config.VocabSize, seed: length);
        var expected = LlamaCppLogits(path, tokens);

        using var opened = EngineSelection.Open(engine, path, new SessionOptions { ContextLength = 512, Threads = 2 });
        var session = opened.Session;
        var all = session.Evaluate(tokens, allLogits: true);
        var vocab = (int)config.VocabSize;
        double worst = 0;
        for (var t = 0; t < length; t++) worst = Math.Max(worst, MaxAbsDiff(all.AsSpan(t * vocab, vocab), expected[t]));
        var scale = expected.Max(row => row.Max(Math.Abs));
        TestContext.Out.WriteLine($"prefill: max |mome - llama.cpp| = {worst:E2} (largest |logit| {scale:F2})");
        Assert.That(scale, Is.GreaterThan(1.0), "logits must be large enough for the comparison to mean something");
        // Half-precision weights round every matmul input as ggml does; a 1e-7 difference
        // before rounding can still flip an element to the neighbouring half, so the bound
        // for F16/BF16 scales with the logits (2e-2 at a largest |logit| of 10).
        var bound = config.WeightType == TensorType.F32 ? tolerance : tolerance * Math.Max(1.0, scale / 10);
        Assert.That(worst, Is.LessThanOrEqualTo(bound));

        // Prefill of a prefix, then decode one token at a time: the same logits.
        if (length > 1)
        {
            session.Clear();
            var split = length / 2;
            session.Evaluate(tokens.AsSpan(0, split));
            double decodeWorst = 0;
            for (var t = split; t < length; t++)
                decodeWorst = Math.Max(decodeWorst, MaxAbsDiff(session.Evaluate(tokens.AsSpan(t, 1)), expected[t]));
            TestContext.Out.WriteLine($"decode: max |mome - llama.cpp| = {decodeWorst:E2}");
            Assert.That(decodeWorst, Is.LessThanOrEqualTo(bound));
        }
    }

    [Test]
    public void BatchedSequencesOfDifferentLengthsEqualEachAlone()
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), path, seed: 4);
        var vocab = (int)SyntheticModelConfig.Preset("tiny").VocabSize;
        int[][] sequences = [RandomTokens(5, vocab, 1), RandomTokens(9, vocab, 2), RandomTokens(2, vocab, 3)];

        // Alone: each sequence in its own session, prefill then one decode step.
        var alone = sequences.Select(s =>
        {
            using var opened = EngineSelection.Open(engine, path, new SessionOptions { ContextLength = 64 });
            var single = opened.Session;
            single.Evaluate(s[..^1]);
            return single.Evaluate(s[^1..]);
        }).ToArray();

        // Together: one batch with every prefix (interleaved), then one batch with every last token.
        using var together = EngineSelection.Open(engine, path, new SessionOptions { ContextLength = 64, MaxSequences = 3 });
        var session = together.Session;
        var tokens = new List<int>();
        var positions = new List<int>();
        var ids = new List<int>();
        for (var p = 0; p < sequences.Max(s => s.Length - 1); p++)
            for (var s = 0; s < sequences.Length; s++)
                if (p < sequences[s].Length - 1)
                {
                    tokens.Add(sequences[s][p]);
                    positions.Add(p);
                    ids.Add(s);
                }
        session.Decode(tokens.ToArray(), positions.ToArray(), ids.ToArray());
        var last = session.Decode(sequences.Select(s => s[^1]).ToArray(), sequences.Select(s => s.Length - 1).ToArray(), [0, 1, 2],
            [true, true, true]);
        for (var s = 0; s < sequences.Length; s++)
            Assert.That(MaxAbsDiff(last.AsSpan(s * vocab, vocab), alone[s]), Is.LessThanOrEqualTo(1e-6), $"sequence {s}");
    }
}
