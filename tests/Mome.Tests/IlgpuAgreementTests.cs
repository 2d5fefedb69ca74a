using System.Text;
using Mome.Engines;
using Mome.Ilgpu;
using Mome.Gguf;
using Mome.Ilgpu.Model;

namespace Mome.Tests;

/// <summary>
/// The ILGPU engine (CPU accelerator) against the native engine: the managed GGUF reader reads
/// or refuses every file as the native reader does (same config, tensors and metadata, or the
/// same error code and message), and the forward pass gives the same logits.
/// </summary>
[NonParallelizable]
public sealed class IlgpuAgreementTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>What the native reader makes of a file: a summary of it, or its error.</summary>
    private static string NativeOutcome(string path)
    {
        try
        {
            using var m = MomeModel.Open(path);
            var tensors = m.Tensors.Select(t => $"{t.Name}:{(int)t.Type}:[{string.Join(",", t.Shape)}]:{t.SizeBytes}");
            var meta = m.Metadata.Select(kv => $"{kv.Key}:{kv.Value.Type}:{kv.Value.ElementType}:{kv.Value.Count}");
            return Summary(m.Config, m.FileInfo.Version, m.FileInfo.DataOffset, tensors, meta);
        }
        catch (MomeException e)
        {
            return $"{e.Code}: {e.Message}";
        }
    }

    private static string ManagedOutcome(string path)
    {
        try
        {
            using var f = GgufFile.Open(path);
            var config = LlamaConfigReader.Read(f);
            LlamaConfigReader.CheckTensors(f, config);
            var tensors = f.Tensors.Select(t => $"{t.Name}:{t.Type}:[{string.Join(",", t.Shape)}]:{t.SizeBytes}");
            // The native reader counts a string's bytes; an array its elements; a scalar 1.
            var meta = f.Metadata.Select(kv => $"{kv.Key}:{kv.Value.Type}:{kv.Value.ElementType}:" +
                (kv.Value.Type == MetadataType.String ? (ulong)kv.Value.AsStringBytes().Length : kv.Value.Count));
            return Summary(config, f.Version, f.DataOffset, tensors, meta);
        }
        catch (MomeException e)
        {
            return $"{e.Code}: {e.Message}";
        }
    }

    private static string Summary(ModelConfig c, uint version, ulong dataOffset, IEnumerable<string> tensors, IEnumerable<string> meta) =>
        $"ok v{version} data@{dataOffset} {c}\n{string.Join("\n", tensors)}\n{string.Join("\n", meta)}";

    private void AssertSameOutcome(string name, byte[] bytes)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        var native = NativeOutcome(path);
        Assert.That(ManagedOutcome(path), Is.EqualTo(native), name);
        File.Delete(path);
    }

    private static IEnumerable<(string Name, byte[] Bytes)> HostileFiles()
    {
        yield return ("empty", []);
        yield return ("magic", Encoding.ASCII.GetBytes("GGML and then some bytes"));
        yield return ("v1", new GgufBuilder { Version = 1 }.Build());
        yield return ("big-endian", new GgufBuilder { Version = 0x03000000 }.Build());
        yield return ("kv-count", new GgufBuilder { KvCountOverride = 1UL << 62 }.U32("a", 1).Build());
        yield return ("tensor-count", new GgufBuilder { TensorCountOverride = 1UL << 60 }.Build());
        yield return ("array-length", new GgufBuilder().Raw(GgufBuilder.Entry("a", 9, w => { w.Write(4u); w.Write(1UL << 61); })).Build());
        yield return ("unknown-type", new GgufBuilder().Raw(GgufBuilder.Entry("a", 99, _ => { })).Build());
        yield return ("duplicate-key", GgufBuilder.TinyLlama().U32("llama.block_count", 1).Build());
        yield return ("alignment-3", GgufBuilder.TinyLlama().U32("general.alignment", 3).Build());
        yield return ("alignment-f32", GgufBuilder.TinyLlama().F32("general.alignment", 32).Build());
        yield return ("alignment-huge", GgufBuilder.TinyLlama().U32("general.alignment", 1u << 31).Build());
        yield return ("tensor-type", GgufBuilder.TinyLlama().Tensor("x", 77, [4], new byte[16]).Build());
        yield return ("dims-overflow", GgufBuilder.TinyLlama().Tensor("x", 0, [1UL << 40, 1UL << 40], []).Build());
        yield return ("five-dims", GgufBuilder.TinyLlama().Tensor("x", 0, [1, 1, 1, 1, 1], new byte[4]).Build());
        yield return ("misaligned", GgufBuilder.TinyLlama().Tensor("x", 0, [4], new byte[16], offset: 7).Build());
        yield return ("past-the-end", GgufBuilder.TinyLlama().Tensor("x", 0, [4], new byte[16], offset: 1UL << 20).Build());
        yield return ("q-block", GgufBuilder.TinyLlama().Tensor("x", 8, [33], new byte[34]).Build());
        yield return ("missing-tensor", GgufBuilder.TinyLlama().Drop("blk.0.ffn_up.weight").Build());
        yield return ("transposed", GgufBuilder.TinyLlama(embd: 8, ff: 16).Reshape("blk.0.ffn_up.weight", 16, 8).Build());
        yield return ("no-architecture", new GgufBuilder().U32("llama.block_count", 1).Build());
        yield return ("other-architecture", new GgufBuilder().Str("general.architecture", "gpt2").Build());
        yield return ("heads", GgufBuilder.TinyLlama(embd: 8, heads: 3).Build());
        yield return ("quantized-norm", GgufBuilder.TinyLlama().Drop("output_norm.weight").Tensor("output_norm.weight", 8, [32], new byte[34]).Build());
        yield return ("bos", GgufBuilder.TinyLlama().U32("tokenizer.ggml.bos_token_id", 999).Build());
        yield return ("eps-string", GgufBuilder.TinyLlama().Str("llama.rope.freq_base", "high").Build());
        yield return ("nul-name", GgufBuilder.TinyLlama().Tensor("a\0b", 0, [4], new byte[16]).Build());
        yield return ("bad-utf8", new GgufBuilder().Raw(GgufBuilder.Entry("\u00e9", 4, w => w.Write(1u)).Select(b => b == 0xA9 ? (byte)0xFF : b).ToArray()).Build());
        var nested = new GgufBuilder().Raw(GgufBuilder.Entry("deep", 9, w =>
        {
            for (var i = 0; i < 9; i++)
            {
                w.Write(9u);
                w.Write(1UL);
            }
            w.Write(4u);
            w.Write(0UL);
        }));
        yield return ("nested", nested.Build());
        yield return ("valid", GgufBuilder.TinyLlama().Build());
        yield return ("valid-v2", new GgufBuilder { Version = 2 }.Str("general.architecture", "llama").Build());
    }

    [Test]
    public void TheManagedReaderAgreesOnHostileFiles()
    {
        var count = 0;
        foreach (var (name, bytes) in HostileFiles())
        {
            AssertSameOutcome(name, bytes);
            count++;
        }
        Assert.That(count, Is.GreaterThan(25));
    }

    [Test]
    public void TheManagedReaderAgreesOnEveryTruncation()
    {
        var bytes = GgufBuilder.TinyLlama().Build();
        for (var length = 1; length < bytes.Length; length += length < 700 ? 1 : 29)
            AssertSameOutcome($"cut{length}", bytes[..length]);
    }

    [Test]
    public void TheManagedReaderAgreesOnRandomCorruption()
    {
        var original = GgufBuilder.TinyLlama().Build();
        var rng = new Random(17);
        var refused = 0;
        for (var i = 0; i < 300; i++)
        {
            var bytes = (byte[])original.Clone();
            for (var flips = rng.Next(1, 4); flips > 0; flips--) bytes[rng.Next(Math.Min(bytes.Length, 900))] = (byte)rng.Next(256);
            var path = Path.Combine(_dir, $"r{i}.gguf");
            File.WriteAllBytes(path, bytes);
            var native = NativeOutcome(path);
            Assert.That(ManagedOutcome(path), Is.EqualTo(native), $"corruption {i}");
            refused += native.StartsWith("ok", StringComparison.Ordinal) ? 0 : 1;
            File.Delete(path);
        }
        Assert.That(refused, Is.GreaterThan(50), "the corruptions must reach the checks");
    }

    [Test]
    public void TheManagedReaderAgreesOnSyntheticModels()
    {
        foreach (var type in new[] { TensorType.F32, TensorType.F16, TensorType.BF16 })
        {
            var path = Path.Combine(_dir, $"{type}.gguf");
            MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny") with { WeightType = type, RopeScaling = RopeScaling.Llama3,
                RopeScalingFactor = 8, RopeOriginalContext = 64 }, path, seed: 5);
            var native = NativeOutcome(path);
            Assert.That(native, Does.StartWith("ok"));
            Assert.That(ManagedOutcome(path), Is.EqualTo(native), type.ToString());
        }
    }

    public static IEnumerable<TestCaseData> Models()
    {
        var tiny = SyntheticModelConfig.Preset("tiny") with { ContextLength = 256, InitStd = 0.25f };
        yield return new TestCaseData(tiny, 1e-4).SetName("F32 GQA 4/2");
        yield return new TestCaseData(tiny with { TiedOutput = true, KvHeadCount = 1, HeadDim = 24 }, 1e-4).SetName("F32 tied, GQA 4/1, non-square");
        yield return new TestCaseData(tiny with { EmbeddingLength = 48, HeadCount = 6, KvHeadCount = 2, HeadDim = 12 }, 1e-4).SetName("F32 key_length, GQA 6/2");
        yield return new TestCaseData(tiny with { RopeFreqBase = 500000, RopeScaling = RopeScaling.Llama3, RopeScalingFactor = 8, RopeOriginalContext = 16 }, 1e-4)
            .SetName("F32 llama3 rope scaling");
        yield return new TestCaseData(tiny with { RopeScaling = RopeScaling.Linear, RopeScalingFactor = 4 }, 1e-4).SetName("F32 linear rope scaling");
        yield return new TestCaseData(tiny with { WeightType = TensorType.F16 }, 2e-2).SetName("F16");
        yield return new TestCaseData(tiny with { WeightType = TensorType.BF16, TiedOutput = true }, 2e-2).SetName("BF16 tied");
    }

    [TestCaseSource(nameof(Models))]
    public void LogitsAgreeWithTheNativeEngine(SyntheticModelConfig config, double tolerance)
    {
        var path = Path.Combine(_dir, "m.gguf");
        MomeModel.CreateSynthetic(config, path, seed: 11);
        var tokens = ForwardOracleTests.RandomTokens(37, config.VocabSize, seed: 2);
        var options = new SessionOptions { ContextLength = 64 };
        using var native = EngineSelection.Open(EngineKind.Native, path, options);
        using var ilgpu = EngineSelection.Open(EngineKind.Ilgpu, path, options);
        var expected = native.Session.Evaluate(tokens, allLogits: true);
        var actual = ilgpu.Session.Evaluate(tokens, allLogits: true);
        var worst = ForwardOracleTests.MaxAbsDiff(actual, expected);
        var scale = expected.Max(Math.Abs);
        TestContext.Out.WriteLine($"max |ilgpu - native| = {worst:E2} (largest |logit| {scale:F2})");
        Assert.That(scale, Is.GreaterThan(1.0), "logits must be large enough for the comparison to mean something");
        var bound = config.WeightType == TensorType.F32 ? tolerance : tolerance * Math.Max(1.0, scale / 10);
        Assert.That(worst, Is.LessThanOrEqualTo(bound));
    }

    [Test]
    public void QuantizedWeightsAreRefusedByName()
    {
        var f32 = Path.Combine(_dir, "f32.gguf");
        var q8 = Path.Combine(_dir, "q8.gguf");
        MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), f32, seed: 1);
        MomeModel.Quantize(f32, q8, TensorType.Q8_0);
        var e = Assert.Throws<MomeException>(() => IlgpuModel.Open(q8).Dispose())!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.Unsupported));
        Assert.That(e.Message, Does.Contain(q8).And.Contain("Q8_0").And.Contain("ILGPU engine"));
    }
}
