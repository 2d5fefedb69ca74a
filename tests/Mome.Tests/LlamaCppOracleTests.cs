using System.Globalization;
using System.Text;
using LLama;
using LLama.Common;
using LLama.Native;

namespace Mome.Tests;

/// <summary>
/// llama.cpp (through LLamaSharp, test-only) is the oracle: synthetic models written by Mome
/// must load in it, its hyper-parameters must equal Mome's, and it must run them.
/// </summary>
[NonParallelizable]
public sealed class LlamaCppOracleTests
{
    private static readonly StringBuilder LlamaLog = new();
    private string _dir = "";

    [OneTimeSetUp]
    public void RegisterLog()
    {
        // Must precede the first native call: a failed load explains itself only here (ORACLE.md).
        if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
            NativeLibraryConfig.All.WithLogCallback((level, message) =>
            {
                lock (LlamaLog) LlamaLog.Append(message);
            });
    }

    [SetUp]
    public void SetUp() => _dir = TestPaths.NewTempDir();

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    public static IEnumerable<TestCaseData> Shapes()
    {
        var tiny = SyntheticModelConfig.Preset("tiny");
        yield return new TestCaseData(tiny).SetName("tiny preset, F32, GQA 4/2");
        yield return new TestCaseData(tiny with
        {
            EmbeddingLength = 48, HeadCount = 4, KvHeadCount = 1, HeadDim = 16, WeightType = TensorType.F16, TiedOutput = true,
        }).SetName("non-square heads (key_length), GQA 4/1, F16, tied output");
        yield return new TestCaseData(tiny with
        {
            RopeFreqBase = 500000, RopeScaling = RopeScaling.Llama3, RopeScalingFactor = 8, RopeOriginalContext = 128,
            WeightType = TensorType.BF16,
        }).SetName("rope base 500000 with llama3 scaling, BF16");
        yield return new TestCaseData(tiny with { RopeScaling = RopeScaling.Linear, RopeScalingFactor = 4 })
            .SetName("linear rope scaling x4");
        yield return new TestCaseData(SyntheticModelConfig.Preset("mini")).SetName("mini preset");
    }

    [TestCaseSource(nameof(Shapes))]
    public void HyperParametersReadBackIdenticallyThroughBoth(SyntheticModelConfig config)
    {
        var path = Path.Combine(_dir, "model.gguf");
        MomeModel.CreateSynthetic(config, path, seed: 11);
        using var mome = MomeModel.Open(path);
        var c = mome.Config;

        var parameters = new ModelParams(path) { ContextSize = 64, GpuLayerCount = 0, Threads = 1, FlashAttention = false, TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32 };
        LLamaWeights weights;
        try
        {
            weights = LLamaWeights.LoadFromFile(parameters);
        }
        catch (Exception e)
        {
            Assert.Fail($"llama.cpp refused the file: {e.Message}\n{LlamaLog}");
            return;
        }
        using (weights)
        {
            var h = weights.NativeHandle;
            string Meta(string key) => weights.Metadata.TryGetValue(key, out var v) ? v : $"<absent {key}>";
            double MetaNumber(string key) => double.Parse(Meta(key), CultureInfo.InvariantCulture);
            Assert.Multiple(() =>
            {
                Assert.That(h.EmbeddingSize, Is.EqualTo(c.EmbeddingLength), "n_embd");
                Assert.That(h.LayerCount, Is.EqualTo(c.LayerCount), "n_layer");
                Assert.That(h.HeadCount, Is.EqualTo(c.HeadCount), "n_head");
                Assert.That(h.KVHeadCount, Is.EqualTo(c.KvHeadCount), "n_head_kv");
                Assert.That(h.ContextSize, Is.EqualTo(c.ContextLength), "n_ctx_train");
                Assert.That(h.Vocab.Count, Is.EqualTo(c.VocabSize), "n_vocab");
                Assert.That(h.ParameterCount, Is.EqualTo(c.ParameterCount), "parameter count");
                Assert.That(h.RopeFrequency, Is.EqualTo(c.RopeFreqScale), "rope frequency scale");
                Assert.That((long?)h.Vocab.BOS, Is.EqualTo(c.BosTokenId), "bos");
                Assert.That((long?)h.Vocab.EOS, Is.EqualTo(c.EosTokenId), "eos");
                Assert.That(MetaNumber("llama.rope.freq_base"), Is.EqualTo(c.RopeFreqBase).Within(1e-3 * c.RopeFreqBase), "rope base");
                Assert.That(MetaNumber("llama.attention.layer_norm_rms_epsilon"), Is.EqualTo(c.RmsNormEps).Within(1e-9), "rms eps");
                Assert.That(MetaNumber("llama.feed_forward_length"), Is.EqualTo(c.FeedForwardLength), "n_ff");
                Assert.That(c.HeadDim, Is.EqualTo(config.HeadDim), "head_dim");
                if (c.HeadCount * c.HeadDim != c.EmbeddingLength)
                    Assert.That(MetaNumber("llama.attention.key_length"), Is.EqualTo(c.HeadDim), "key_length");
                // Every metadata key llama.cpp sees, Mome sees too (llama.cpp lists arrays by summary).
                foreach (var key in weights.Metadata.Keys)
                    Assert.That(mome.Metadata.ContainsKey(key), Is.True, $"metadata key {key}");
            });

            // The model runs: llama.cpp tokenizes text with the synthetic vocabulary and
            // evaluates it to finite logits.
            using var context = weights.CreateContext(parameters);
            var tokens = context.Tokenize("Hello world, the capital of 42 is: ", addBos: true);
            Assert.That(tokens.Length, Is.GreaterThan(3));
            Assert.That(tokens.Length, Is.LessThan(30), "common words are whole tokens");
            var batch = new LLamaBatch();
            for (var i = 0; i < tokens.Length; i++) batch.Add(tokens[i], i, LLamaSeqId.Zero, i == tokens.Length - 1);
            Assert.That(context.NativeHandle.Decode(batch), Is.EqualTo(DecodeResult.Ok));
            var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            Assert.That(logits.Length, Is.EqualTo(c.VocabSize));
            foreach (var x in logits) Assert.That(float.IsFinite(x), Is.True);
        }
    }
}
