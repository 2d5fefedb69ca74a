namespace Mome;

/// <summary>Element types of tensors (numbering as in ggml). Mome computes with F32, F16
/// and BF16, and on the CPU with Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K weights;
/// other types are listed but cannot be read.</summary>
public enum TensorType
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
}

/// <summary>How RoPE positions are scaled beyond the training context.</summary>
public enum RopeScaling { None = 0, Linear = 1, Yarn = 2, Llama3 = 3 }

/// <summary>GGUF metadata value types.</summary>
public enum MetadataType
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6,
    Bool = 7, String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>One tensor of a model file (dimensions in ggml order: the first is the input
/// dimension).</summary>
public sealed record TensorInfo(string Name, TensorType Type, long[] Shape, ulong FileOffset, ulong SizeBytes)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>Where a GGUF file keeps things.</summary>
public sealed record GgufFileInfo(uint Version, uint Alignment, ulong FileSize, ulong DataOffset);

/// <summary>Llama hyper-parameters as read from a model file.</summary>
public sealed record ModelConfig
{
    public long VocabSize { get; init; }
    public long ContextLength { get; init; }
    public long EmbeddingLength { get; init; }
    public long LayerCount { get; init; }
    public long HeadCount { get; init; }
    public long KvHeadCount { get; init; }
    public long HeadDim { get; init; }
    public long ValueHeadDim { get; init; }
    public long FeedForwardLength { get; init; }
    public long RopeDimensions { get; init; }
    public float RopeFreqBase { get; init; }
    public float RopeFreqScale { get; init; }
    public float RmsNormEps { get; init; }
    public RopeScaling RopeScaling { get; init; }
    public float RopeScalingFactor { get; init; }
    public long RopeOriginalContext { get; init; }
    public bool TiedOutput { get; init; }
    public bool HasRopeFreqs { get; init; }
    public TensorType WeightType { get; init; }
    public long BosTokenId { get; init; }
    public long EosTokenId { get; init; }
    public ulong ParameterCount { get; init; }
}
