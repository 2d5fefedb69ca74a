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

    /// <summary>
    /// The bank shape memory tuning uses by default on a model: rank 4, alpha 4, key dimension
    /// 64, top 32 of product keys, and as many experts as fit <paramref name="budgetBytes"/> of
    /// F32 A and B tables, as a square from 64² to 1024². The more experts, the fewer of a fact's
    /// experts unrelated text shares (untouched experts have B = 0 and change nothing), so the
    /// lower the interference (bench/RESULTS.md: 4,096 experts 3.1 nats, 262,144 experts 0.31).
    /// </summary>
    public static MemoryOptions ForTuning(ModelConfig config, long budgetBytes = 512L << 20)
    {
        ArgumentNullException.ThrowIfNull(config);
        const int rank = 4;
        var perExpert = 2L * rank * config.EmbeddingLength * sizeof(float);
        var side = (long)Math.Sqrt(Math.Clamp(budgetBytes / perExpert, 64 * 64, 1024 * 1024));
        return new MemoryOptions { Experts = side * side, KeyDim = 64, TopK = 32, Rank = rank, Alpha = 4, Router = RouterKind.Product };
    }
}
