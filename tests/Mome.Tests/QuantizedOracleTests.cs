using LLama;
using LLama.Common;
using LLama.Native;

namespace Mome.Tests;

/// <summary>
/// Quantized models against llama.cpp: F32 synthetic models (widths multiples of 256, as
/// k-quants need) quantized by llama.cpp's own quantizer, then run through both engines
/// (ORACLE.md settings). ggml quantizes the activations per block and multiplies integers;
/// Mome does the same and sums the floats in the order llama.cpp's x86 kernels do, so most
/// runs agree to the last bit or within 2e-6. What remains are rounding flips: where a sum
/// Mome adds in another order than llama.cpp's prefill kernel (Q4_K/Q6_K rows of several
/// super-blocks) lands within an ulp of a rounding step, the next layer's quantized
/// activation moves by one step and the logits by a few 1e-2 from there on.
/// </summary>
[NonParallelizable]
public sealed class QuantizedOracleTests
{
    private const double Tolerance = 2e-2;
    private const double FlipTolerance = 0.1;
    private const int Positions = 64;
    private static readonly System.Text.StringBuilder LlamaLog = new();
    private string _dir = "";

    [OneTimeSetUp]
    public void RegisterLog()
    {
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
            NativeLibraryConfig.All.WithLogCallback((_, message) =>
            {
                lock (LlamaLog) LlamaLog.Append(message);
            });
    }

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    // Non-square attention (n_head * head_dim != n_embd) and GQA, so a transposed matrix fails.
    internal static readonly SyntheticModelConfig Wide = SyntheticModelConfig.Preset("tiny") with
    {
        EmbeddingLength = 256, HeadCount = 4, KvHeadCount = 2, HeadDim = 32, FeedForwardLength = 512, InitStd = 0.05f,
    };

    internal static readonly SyntheticModelConfig Deeper = SyntheticModelConfig.Preset("tiny") with
    {
        EmbeddingLength = 256, LayerCount = 3, HeadCount = 8, KvHeadCount = 4, HeadDim = 16, FeedForwardLength = 768, InitStd = 0.05f,
    };

    internal static readonly SyntheticModelConfig Wider = SyntheticModelConfig.Preset("tiny") with
    {
        EmbeddingLength = 512, LayerCount = 3, HeadCount = 8, KvHeadCount = 2, HeadDim = 32, FeedForwardLength = 768, InitStd = 0.03f,
    };

    private static readonly (string Name, SyntheticModelConfig Config)[] Shapes =
        [("256 wide, 2 layers, heads 4/2 x 32", Wide), ("256 wide, 3 layers, heads 8/4 x 16", Deeper), ("512 wide, 3 layers, heads 8/2 x 32", Wider)];

    /// <summary>The file type, the type llama.cpp gives the layers' attention query, and two
    /// (shape, seed) pairs of different shapes on which no rounding flip occurs (measured
    /// 2026-12-01 with LLamaSharp 0.30.0's AVX-512 build).</summary>
    private static readonly (LLamaFtype Ftype, TensorType Main, (int Shape, int Seed)[] Exact)[] Types =
    [
        (LLamaFtype.MOSTLY_Q8_0, TensorType.Q8_0, [(0, 5), (2, 5)]),
        (LLamaFtype.MOSTLY_Q4_0, TensorType.Q4_0, [(0, 5), (1, 5)]),
        (LLamaFtype.MOSTLY_Q4_K_M, TensorType.Q4_K, [(0, 7), (2, 5)]),
        (LLamaFtype.MOSTLY_Q5_K_M, TensorType.Q5_K, [(1, 5), (2, 5)]),
        (LLamaFtype.MOSTLY_Q6_K, TensorType.Q6_K, [(0, 5), (2, 5)]),
    ];

    public static IEnumerable<TestCaseData> Cases() =>
        from t in Types
        from e in t.Exact
        select new TestCaseData(Shapes[e.Shape].Config, e.Seed, t.Ftype, t.Main)
            .SetName($"{t.Main} ({t.Ftype}), {Shapes[e.Shape].Name}, seed {e.Seed}");

    public static IEnumerable<TestCaseData> AllShapesAndSeeds() =>
        from t in Types
        from shape in Shapes
        from seed in new[] { 5, 6, 7 }
        select new TestCaseData(shape.Config, seed, t.Ftype, t.Main).SetName($"{t.Main} ({t.Ftype}), {shape.Name}, seed {seed}");

    /// <summary>Writes the F32 model and llama.cpp's quantization of it; returns the latter.</summary>
    internal static string QuantizedModel(string dir, SyntheticModelConfig config, int seed, LLamaFtype ftype)
    {
        var f32 = Path.Combine(dir, $"f32-{seed}.gguf");
        MomeModel.CreateSynthetic(config, f32, seed: (ulong)seed);
        var quantized = Path.Combine(dir, $"{ftype}-{seed}.gguf");
        NativeApi.llama_empty_call();  // LLamaQuantizer calls into libllama before loading it (ORACLE.md)
        Assert.That(LLamaQuantizer.Quantize(f32, quantized, ftype, nthread: 1, allowRequantize: false, quantizeOutputTensor: true),
            Is.True, $"llama.cpp's quantizer failed:\n{LlamaLog}");
        return quantized;
    }

    private static int[] RandomTokens(int count, long vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(3, (int)vocab)).ToArray();
    }

    [TestCaseSource(nameof(Cases))]
    public void QuantizedFileHoldsTheExpectedTypes(SyntheticModelConfig config, int seed, LLamaFtype ftype, TensorType main)
    {
        var path = QuantizedModel(_dir, config, seed, ftype);
        using var model = MomeModel.Open(path);
        var matrices = model.Tensors.Where(t => t.Shape.Length == 2).ToList();
        TestContext.Out.WriteLine(string.Join(", ", matrices.GroupBy(t => t.Type).Select(g => $"{g.Key} x {g.Count()}")));
        Assert.That(matrices.Single(t => t.Name == "blk.0.attn_q.weight").Type, Is.EqualTo(main));
        Assert.That(matrices.Where(t => t.Type is TensorType.F32 or TensorType.F16 or TensorType.BF16).Select(t => t.Name), Is.Empty,
            "every matrix is quantized: the comparison cannot silently run in F32");
        Assert.That(model.Tensors.Where(t => t.Shape.Length == 1).All(t => t.Type == TensorType.F32), Is.True, "norms stay F32");
    }

    [TestCaseSource(nameof(Cases))]
    public void LogitsMatchLlamaCpp(SyntheticModelConfig config, int seed, LLamaFtype ftype, TensorType main) =>
        CompareWithLlamaCpp(config, seed, ftype, main, Tolerance, withReferenceAndDecode: true);

    /// <summary>Every shape and seed: within a rounding flip's reach (measured up to 6e-2; a
    /// wrong scale, nibble order or activation rounding moves the logits by 0.3 and more).</summary>
    [TestCaseSource(nameof(AllShapesAndSeeds))]
    public void LogitsStayWithinARoundingFlipOnEveryShapeAndSeed(SyntheticModelConfig config, int seed, LLamaFtype ftype, TensorType main) =>
        CompareWithLlamaCpp(config, seed, ftype, main, FlipTolerance, withReferenceAndDecode: false);

    private void CompareWithLlamaCpp(SyntheticModelConfig config, int seed, LLamaFtype ftype, TensorType main, double tolerance,
                                     bool withReferenceAndDecode)
    {
        var path = QuantizedModel(_dir, config, seed, ftype);
        var tokens = RandomTokens(Positions, config.VocabSize, seed);
        var expected = ForwardOracleTests.LlamaCppLogits(path, tokens);
        var scale = expected.Max(row => row.Max(Math.Abs));
        Assert.That(scale, Is.GreaterThan(1.0), "logits must be large enough for the comparison to mean something");

        using var model = MomeModel.Open(path);
        var vocab = (int)config.VocabSize;
        foreach (var reference in withReferenceAndDecode ? new[] { false, true } : [false])
        {
            using var session = new MomeSession(model, new SessionOptions { ContextLength = 128, Threads = 2, Backend = reference ? DeviceBackend.CpuReference : DeviceBackend.Cpu });
            var all = session.Evaluate(tokens, allLogits: true);
            double worst = 0;
            var exact = 0;
            for (var t = 0; t < Positions; t++)
            {
                var diff = ForwardOracleTests.MaxAbsDiff(all.AsSpan(t * vocab, vocab), expected[t]);
                worst = Math.Max(worst, diff);
                if (diff <= 1e-5) exact++;
            }
            var kernels = reference ? "reference" : "fast";
            TestContext.Out.WriteLine($"{main}, {kernels} prefill: max |mome - llama.cpp| = {worst:E2} (largest |logit| {scale:F2}), " +
                                      $"{exact}/{Positions} positions within 1e-5");
            Assert.That(worst, Is.LessThanOrEqualTo(tolerance), kernels);
            if (reference || !withReferenceAndDecode) continue;

            // Prefill of a prefix, then decode one token at a time.
            session.Clear();
            session.Evaluate(tokens.AsSpan(0, Positions / 2));
            double decodeWorst = 0;
            for (var t = Positions / 2; t < Positions; t++)
                decodeWorst = Math.Max(decodeWorst, ForwardOracleTests.MaxAbsDiff(session.Evaluate(tokens.AsSpan(t, 1)), expected[t]));
            TestContext.Out.WriteLine($"{main}, decode: max |mome - llama.cpp| = {decodeWorst:E2}");
            Assert.That(decodeWorst, Is.LessThanOrEqualTo(tolerance), "decode");
        }
    }
}
