namespace Mome.Tests;

/// <summary>Synthetic models written by Mome read back with exactly the requested shape,
/// metadata and weights.</summary>
public sealed class SyntheticModelTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [TestCase(TensorType.F32, false)]
    [TestCase(TensorType.F16, true)]
    [TestCase(TensorType.BF16, false)]
    public void TinyPresetReadsBack(TensorType weightType, bool tied)
    {
        var config = SyntheticModelConfig.Preset("tiny") with { WeightType = weightType, TiedOutput = tied };
        var path = Path.Combine(_dir, "tiny.gguf");
        MomeModel.CreateSynthetic(config, path, seed: 7);
        using var model = MomeModel.Open(path);
        var c = model.Config;
        Assert.Multiple(() =>
        {
            Assert.That(c.VocabSize, Is.EqualTo(config.VocabSize));
            Assert.That(c.EmbeddingLength, Is.EqualTo(config.EmbeddingLength));
            Assert.That(c.LayerCount, Is.EqualTo(config.LayerCount));
            Assert.That(c.HeadCount, Is.EqualTo(config.HeadCount));
            Assert.That(c.KvHeadCount, Is.EqualTo(config.KvHeadCount));
            Assert.That(c.HeadDim, Is.EqualTo(config.HeadDim));
            Assert.That(c.FeedForwardLength, Is.EqualTo(config.FeedForwardLength));
            Assert.That(c.ContextLength, Is.EqualTo(config.ContextLength));
            Assert.That(c.TiedOutput, Is.EqualTo(tied));
            Assert.That(c.WeightType, Is.EqualTo(weightType));
            Assert.That(c.BosTokenId, Is.EqualTo(1));
            Assert.That(c.EosTokenId, Is.EqualTo(2));
        });
        var expectedParams = config.VocabSize * config.EmbeddingLength * (tied ? 1 : 2) + config.EmbeddingLength
            + config.LayerCount * (2 * config.EmbeddingLength
                + config.EmbeddingLength * config.HeadCount * config.HeadDim * 2
                + config.EmbeddingLength * config.KvHeadCount * config.HeadDim * 2
                + 3 * config.EmbeddingLength * config.FeedForwardLength);
        Assert.That(c.ParameterCount, Is.EqualTo((ulong)expectedParams));

        var tokens = model.Metadata["tokenizer.ggml.tokens"];
        Assert.That(tokens.Count, Is.EqualTo((ulong)config.VocabSize));
        Assert.That(tokens.GetString(3), Is.EqualTo("<0x00>"));
        Assert.That(model.Metadata["tokenizer.ggml.model"].GetString(), Is.EqualTo("llama"));
        Assert.That(model.Metadata["tokenizer.ggml.scores"].ElementType, Is.EqualTo(MetadataType.Float32));

        // Weights are drawn from N(0, init_std): check the moments, and that norms are near 1.
        var q = model.ReadTensor("blk.0.attn_q.weight");
        var mean = q.Average();
        var std = Math.Sqrt(q.Select(x => (x - mean) * (x - mean)).Average());
        Assert.That(mean, Is.EqualTo(0).Within(0.01));
        Assert.That(std, Is.EqualTo(config.InitStd).Within(config.InitStd * 0.1));
        Assert.That(model.ReadTensor("output_norm.weight").Average(), Is.EqualTo(1.0).Within(0.05));
    }

    [Test]
    public void SameSeedSameWeightsOtherSeedOtherWeights()
    {
        var config = SyntheticModelConfig.Preset("tiny");
        string Make(string name, ulong seed)
        {
            var p = Path.Combine(_dir, name);
            MomeModel.CreateSynthetic(config, p, seed);
            return p;
        }
        var a = File.ReadAllBytes(Make("a.gguf", 1));
        var b = File.ReadAllBytes(Make("b.gguf", 1));
        var c = File.ReadAllBytes(Make("c.gguf", 2));
        Assert.That(a, Is.EqualTo(b));
        Assert.That(a, Is.Not.EqualTo(c));
    }

    [Test]
    public void HalfPrecisionWeightsAreTheRoundedF32Weights()
    {
        var config = SyntheticModelConfig.Preset("tiny");
        var f32 = Path.Combine(_dir, "f32.gguf");
        var f16 = Path.Combine(_dir, "f16.gguf");
        var bf16 = Path.Combine(_dir, "bf16.gguf");
        MomeModel.CreateSynthetic(config, f32, 3);
        MomeModel.CreateSynthetic(config with { WeightType = TensorType.F16 }, f16, 3);
        MomeModel.CreateSynthetic(config with { WeightType = TensorType.BF16 }, bf16, 3);
        using var m32 = MomeModel.Open(f32);
        using var m16 = MomeModel.Open(f16);
        using var mb16 = MomeModel.Open(bf16);
        var w = m32.ReadTensor("blk.1.ffn_up.weight");
        var h = m16.ReadTensor("blk.1.ffn_up.weight");
        var b = mb16.ReadTensor("blk.1.ffn_up.weight");
        for (var i = 0; i < w.Length; i++)
        {
            Assert.That(h[i], Is.EqualTo((float)(Half)w[i]), $"F16 element {i}");
            Assert.That(b[i], Is.EqualTo(w[i]).Within(Math.Abs(w[i]) / 256 + 1e-30), $"BF16 element {i}");
        }
    }

    [Test]
    public void Llama3RopeScalingWritesFrequencyFactors()
    {
        var config = SyntheticModelConfig.Preset("tiny") with { RopeFreqBase = 500000, RopeScaling = RopeScaling.Llama3, RopeScalingFactor = 8 };
        var path = Path.Combine(_dir, "l3.gguf");
        MomeModel.CreateSynthetic(config, path, 1);
        using var model = MomeModel.Open(path);
        Assert.That(model.Config.RopeScaling, Is.EqualTo(RopeScaling.Llama3));
        Assert.That(model.Config.HasRopeFreqs, Is.True);
        Assert.That(model.Config.RopeFreqBase, Is.EqualTo(500000f));
        var factors = model.ReadTensor("rope_freqs.weight");
        Assert.That(factors, Has.Length.EqualTo(config.HeadDim / 2));
        // Llama 3.1: high frequencies unscaled (factor 1), the lowest scaled by the full factor.
        Assert.That(factors[0], Is.EqualTo(1f));
        Assert.That(factors[^1], Is.EqualTo(8f));
    }

    [Test]
    public void InvalidParametersChangeNothing()
    {
        var path = Path.Combine(_dir, "keep.gguf");
        File.WriteAllText(path, "previous content");
        var bad = SyntheticModelConfig.Preset("tiny") with { KvHeadCount = 3 };
        var e = Assert.Throws<MomeException>(() => MomeModel.CreateSynthetic(bad, path))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.InvalidArgument));
        Assert.That(e.Message, Does.Contain("n_head_kv"));
        Assert.That(File.ReadAllText(path), Is.EqualTo("previous content"));
        Assert.That(Directory.GetFiles(_dir), Has.Length.EqualTo(1), "no temporary file is left behind");
    }

    [Test]
    public void UnwritableFolderIsAnIoError()
    {
        var e = Assert.Throws<MomeException>(() =>
            MomeModel.CreateSynthetic(SyntheticModelConfig.Preset("tiny"), Path.Combine(_dir, "no", "such", "dir", "m.gguf")))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.IoError));
        Assert.That(e.Message, Does.Contain("cannot create"));
    }

    [Test]
    public void UnknownPresetNamesTheOnesThatExist()
    {
        var e = Assert.Throws<MomeException>(() => SyntheticModelConfig.Preset("huge"))!;
        Assert.That(e.Code, Is.EqualTo(MomeErrorCode.NotFound));
        Assert.That(e.Message, Does.Contain("tiny").And.Contain("small"));
    }
}
