using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Shape of a synthetic Llama model (seeded random weights, a generated vocabulary
/// with byte fallback). Start from <see cref="Preset"/> and change what you need.</summary>
public sealed record SyntheticModelConfig
{
    public long VocabSize { get; init; }
    public long ContextLength { get; init; }
    public long EmbeddingLength { get; init; }
    public long LayerCount { get; init; }
    public long HeadCount { get; init; }
    public long KvHeadCount { get; init; }
    /// <summary>Per-head dimension; when HeadCount * HeadDim differs from EmbeddingLength the
    /// file carries attention.key_length.</summary>
    public long HeadDim { get; init; }
    public long FeedForwardLength { get; init; }
    public float RopeFreqBase { get; init; }
    public float RmsNormEps { get; init; }
    /// <summary>None, Linear, or Llama3 (written as rope_freqs.weight).</summary>
    public RopeScaling RopeScaling { get; init; }
    public float RopeScalingFactor { get; init; }
    public float RopeLowFreqFactor { get; init; }
    public float RopeHighFreqFactor { get; init; }
    public long RopeOriginalContext { get; init; }
    public TensorType WeightType { get; init; }
    public bool TiedOutput { get; init; }
    public float InitStd { get; init; }

    /// <summary>Names of the built-in presets.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["tiny", "mini", "small"];

    /// <summary>"tiny" (~0.2M parameters), "mini" (~10M) or "small" (~100M).</summary>
    public static unsafe SyntheticModelConfig Preset(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        MomeNativeLibrary.EnsureLoaded();
        var p = new MomeSyntheticParams { StructSize = (uint)sizeof(MomeSyntheticParams) };
        var utf8 = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* n = utf8)
            Status.Check(NativeMethods.mome_synthetic_preset(n, &p));
        return new SyntheticModelConfig
        {
            VocabSize = p.NVocab, ContextLength = p.NCtxTrain, EmbeddingLength = p.NEmbd, LayerCount = p.NLayer,
            HeadCount = p.NHead, KvHeadCount = p.NHeadKv, HeadDim = p.HeadDim, FeedForwardLength = p.NFf,
            RopeFreqBase = p.RopeFreqBase, RmsNormEps = p.RmsNormEps, RopeScaling = (RopeScaling)(int)p.RopeScaling,
            RopeScalingFactor = p.RopeScalingFactor, RopeLowFreqFactor = p.RopeLowFreqFactor,
            RopeHighFreqFactor = p.RopeHighFreqFactor, RopeOriginalContext = p.RopeOriginalContext,
            WeightType = (TensorType)(int)p.WeightType, TiedOutput = p.TiedOutput != 0, InitStd = p.InitStd,
        };
    }

    internal unsafe MomeSyntheticParams ToNative(ulong seed) => new()
    {
        StructSize = (uint)sizeof(MomeSyntheticParams),
        NVocab = VocabSize, NCtxTrain = ContextLength, NEmbd = EmbeddingLength, NLayer = LayerCount,
        NHead = HeadCount, NHeadKv = KvHeadCount, HeadDim = HeadDim, NFf = FeedForwardLength,
        RopeFreqBase = RopeFreqBase, RmsNormEps = RmsNormEps, RopeScaling = (MomeRopeScaling)(int)RopeScaling,
        RopeScalingFactor = RopeScalingFactor, RopeLowFreqFactor = RopeLowFreqFactor,
        RopeHighFreqFactor = RopeHighFreqFactor, RopeOriginalContext = RopeOriginalContext,
        WeightType = (MomeTensorType)(int)WeightType, TiedOutput = TiedOutput ? (byte)1 : (byte)0,
        InitStd = InitStd, Seed = seed,
    };
}
