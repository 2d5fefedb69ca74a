namespace Mome;

/// <summary>How a memory bank routes: one route per question (sequence) or per token.</summary>
public enum RoutingMode { Sequence = 0, Token = 1 }

/// <summary>Exact scores against every key, or product keys (PKM/PEER).</summary>
public enum RouterKind { Flat = 0, Product = 1 }

/// <summary>Shape of a memory bank (defaults as in DESIGN.md: one layer at ~3/4 depth,
/// 65,536 experts, d_k 128, rank 1, top-32).</summary>
public sealed record MemoryOptions
{
    /// <summary>Model blocks that get a memory layer; empty: one at about 3/4 depth.</summary>
    public IReadOnlyList<int> Layers { get; init; } = [];
    public long Experts { get; init; } = 1 << 16;
    public long KeyDim { get; init; } = 128;
    public int Rank { get; init; } = 1;
    public int TopK { get; init; } = 32;
    public float Temperature { get; init; } = 1.0f;
    public float Alpha { get; init; } = 1.0f;
    public RoutingMode Routing { get; init; } = RoutingMode.Sequence;
    public RouterKind Router { get; init; } = RouterKind.Flat;
    /// <summary>Storage of keys, A and B: F32, F16 or BF16.</summary>
    public TensorType WeightType { get; init; } = TensorType.F32;
    public ulong Seed { get; init; } = 42;
}
