using Mome.Gguf;

namespace Mome.Ilgpu.Model;

/// <summary>Llama hyper-parameters and tensor shapes from a GGUF header, with the native
/// reader's rules and messages (llama_config.cpp), so both engines refuse the same files alike.</summary>
internal static class LlamaConfigReader
{
    private const long MaxDim = 1L << 24;
    private const long MaxLayers = 4096;

    public static ModelConfig Read(GgufFile f)
    {
        var archValue = f.Find("general.architecture");
        if (archValue is null || archValue.Type != MetadataType.String)
            throw Format(f, "required metadata 'general.architecture' (a string) is missing");
        var arch = archValue.AsString();
        if (arch != "llama")
            throw new MomeException(MomeErrorCode.Unsupported, $"{f.Path}: architecture '{arch}' is not supported (only 'llama')");
        var k = new Keys(f, arch);

        var ctx = k.Dim("context_length", -1, long.MaxValue);
        var embd = k.Dim("embedding_length", -1);
        var layers = k.Dim("block_count", -1, MaxLayers);
        var ff = k.Dim("feed_forward_length", -1);
        var heads = k.Dim("attention.head_count", -1);
        var kvHeads = k.Dim("attention.head_count_kv", heads);
        if (heads % kvHeads != 0) throw k.Bad("attention.head_count_kv", $"= {kvHeads} does not divide head_count {heads}");
        if (k.Find("attention.key_length") is null && embd % heads != 0)
            throw k.Bad("attention.head_count", "does not divide embedding_length and attention.key_length is absent");
        var headDim = k.Dim("attention.key_length", embd / heads);
        var headDimV = k.Dim("attention.value_length", headDim);
        var rot = k.Dim("rope.dimension_count", headDim);
        if (rot > headDim || rot % 2 != 0)
            throw k.Bad("rope.dimension_count", $"= {rot} must be even and at most the head dimension {headDim}");
        var eps = (float)k.Real("attention.layer_norm_rms_epsilon", 0, required: true);
        if (!(eps > 0)) throw k.Bad("attention.layer_norm_rms_epsilon", "must be positive");
        var freqBase = (float)k.Real("rope.freq_base", 10000.0);
        if (!(freqBase > 0)) throw k.Bad("rope.freq_base", "must be positive");

        var scaling = RopeScaling.None;
        if (k.Find("rope.scaling.type") is { } t)
        {
            if (t.Type != MetadataType.String) throw k.Bad("rope.scaling.type", "is not a string");
            scaling = t.AsString() switch
            {
                "linear" => RopeScaling.Linear,
                "yarn" => RopeScaling.Yarn,
                "none" => RopeScaling.None,
                var other => throw new MomeException(MomeErrorCode.Unsupported, $"{f.Path}: rope scaling '{other}' is not supported"),
            };
        }
        // As llama.cpp: the factor scales positions whatever the scaling type says.
        var factor = k.Real("rope.scaling.factor", k.Real("rope.scale_linear", 0.0));
        if (factor < 0) throw k.Bad("rope.scaling.factor", "is negative");
        var scalingFactor = factor == 0 ? 1.0f : (float)factor;
        var original = k.Find("rope.scaling.original_context_length") is null ? ctx : k.Dim("rope.scaling.original_context_length", 0, 1L << 30);
        var hasRopeFreqs = f.FindTensor("rope_freqs.weight") is not null;
        if (hasRopeFreqs && scaling == RopeScaling.None) scaling = RopeScaling.Llama3;

        long vocab;
        if (f.Find("tokenizer.ggml.tokens") is { } tokens)
        {
            if (tokens.Type != MetadataType.Array || tokens.ElementType != MetadataType.String)
                throw Format(f, "metadata 'tokenizer.ggml.tokens' is not an array of strings");
            vocab = (long)tokens.Count;
            if (vocab == 0) throw Format(f, "metadata 'tokenizer.ggml.tokens' is empty");
        }
        else
        {
            vocab = k.Dim("vocab_size", -1, 1L << 26);
        }
        var q = f.FindTensor("blk.0.attn_q.weight");
        return new ModelConfig
        {
            VocabSize = vocab, ContextLength = ctx, EmbeddingLength = embd, LayerCount = layers, HeadCount = heads, KvHeadCount = kvHeads,
            HeadDim = headDim, ValueHeadDim = headDimV, FeedForwardLength = ff, RopeDimensions = rot, RopeFreqBase = freqBase,
            RopeFreqScale = 1.0f / scalingFactor, RmsNormEps = eps, RopeScaling = scaling, RopeScalingFactor = scalingFactor,
            RopeOriginalContext = original, TiedOutput = f.FindTensor("output.weight") is null, HasRopeFreqs = hasRopeFreqs,
            WeightType = q is null ? TensorType.F32 : (TensorType)q.Type,
            BosTokenId = TokenId(f, "tokenizer.ggml.bos_token_id", vocab), EosTokenId = TokenId(f, "tokenizer.ggml.eos_token_id", vocab),
            ParameterCount = f.Tensors.Aggregate(0UL, (sum, x) => sum + (ulong)x.ElementCount),
        };
    }

    /// <summary>Every tensor the forward pass reads is present, of the expected shape and of a
    /// type this engine computes with.</summary>
    public static void CheckTensors(GgufFile f, ModelConfig c)
    {
        long qDim = c.HeadCount * c.HeadDim, kDim = c.KvHeadCount * c.HeadDim, vDim = c.KvHeadCount * c.ValueHeadDim;
        Expect(f, "token_embd.weight", [c.EmbeddingLength, c.VocabSize]);
        Expect(f, "output_norm.weight", [c.EmbeddingLength]);
        Expect(f, "output.weight", [c.EmbeddingLength, c.VocabSize], required: false);
        Expect(f, "rope_freqs.weight", [c.RopeDimensions / 2], required: false);
        for (var l = 0; l < c.LayerCount; l++)
        {
            var p = $"blk.{l}.";
            Expect(f, p + "attn_norm.weight", [c.EmbeddingLength]);
            Expect(f, p + "attn_q.weight", [c.EmbeddingLength, qDim]);
            Expect(f, p + "attn_k.weight", [c.EmbeddingLength, kDim]);
            Expect(f, p + "attn_v.weight", [c.EmbeddingLength, vDim]);
            Expect(f, p + "attn_output.weight", [c.HeadCount * c.ValueHeadDim, c.EmbeddingLength]);
            Expect(f, p + "ffn_norm.weight", [c.EmbeddingLength]);
            Expect(f, p + "ffn_gate.weight", [c.EmbeddingLength, c.FeedForwardLength]);
            Expect(f, p + "ffn_up.weight", [c.EmbeddingLength, c.FeedForwardLength]);
            Expect(f, p + "ffn_down.weight", [c.FeedForwardLength, c.EmbeddingLength]);
        }
    }

    private static void Expect(GgufFile f, string name, long[] shape, bool required = true)
    {
        var t = f.FindTensor(name);
        if (t is null)
        {
            if (required) throw Format(f, $"required tensor '{name}' is missing");
            return;
        }
        if (!t.Shape.SequenceEqual(shape))
            throw Format(f, $"tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}]");
        var matrix = shape.Length == 2;
        if (!GgufTensorTypes.IsComputeType(t.Type) && !(matrix && GgufTensorTypes.IsQuantized(t.Type)))
            throw new MomeException(MomeErrorCode.Unsupported,
                $"{f.Path}: tensor '{name}' has type {GgufTensorTypes.Name(t.Type)}; Mome computes with F32, F16 and BF16" +
                (matrix ? ", Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K" : " vectors"));
    }

    private static long TokenId(GgufFile f, string key, long vocab)
    {
        if (f.Find(key) is not { } v) return -1;
        long id;
        try
        {
            id = v.AsInt64();
        }
        catch (MomeException)
        {
            throw Format(f, $"metadata '{key}' is not an integer");
        }
        if (id < 0 || id >= vocab) throw Format(f, $"metadata '{key}' = {id} is not a token id (vocabulary of {vocab})");
        return id;
    }

    private static MomeException Format(GgufFile f, string what) => new(MomeErrorCode.FormatError, $"{f.Path}: {what}");

    private sealed class Keys(GgufFile f, string arch)
    {
        public MomeException Bad(string suffix, string why) => Format(f, $"metadata '{arch}.{suffix}' {why}");

        public GgufValue? Find(string suffix) => f.Find($"{arch}.{suffix}");

        public long Dim(string suffix, long fallback, long max = MaxDim)
        {
            var key = $"{arch}.{suffix}";
            if (f.Find(key) is not { } v)
                return fallback >= 0 ? fallback : throw Format(f, $"required metadata '{key}' is missing");
            if (v.Type == MetadataType.Array)
                throw new MomeException(MomeErrorCode.Unsupported, $"{f.Path}: per-layer values for '{key}' are not supported");
            long x;
            try
            {
                x = v.AsInt64();
            }
            catch (MomeException e)
            {
                throw Bad(suffix, "is not an integer: " + e.Message);
            }
            if (x <= 0 || x > max) throw Bad(suffix, $"= {x} is outside 1..{max}");
            return x;
        }

        public double Real(string suffix, double fallback, bool required = false)
        {
            var key = $"{arch}.{suffix}";
            if (f.Find(key) is not { } v)
                return required ? throw Format(f, $"required metadata '{key}' is missing") : fallback;
            double x;
            try
            {
                x = v.AsDouble();
            }
            catch (MomeException e)
            {
                throw Bad(suffix, "is not a number: " + e.Message);
            }
            if (!double.IsFinite(x)) throw Bad(suffix, "is not finite");
            return x;
        }
    }
}
