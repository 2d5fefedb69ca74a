using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>Expert tables for <see cref="MomeOps.LoraApply"/>: A and B (transposed), each
/// [experts x rank x dim], stored as F32, F16 or BF16 bytes.</summary>
public sealed record LoraTables(TensorType WeightType, long Experts, long Dim, int Rank, byte[] A, byte[] B)
{
    // The buffers of one grouped-LoRA call against the tables' shape (every engine's op checks
    // them the same way before anything runs); the number of segments.
    internal static int CheckSizes(LoraTables experts, ReadOnlySpan<float> u, int tokens, ReadOnlySpan<long> segmentOffsets,
        ReadOnlySpan<int> indices, ReadOnlySpan<float> weights, int topK, ReadOnlySpan<float> output)
    {
        ArgumentNullException.ThrowIfNull(experts);
        var elementSize = experts.WeightType == TensorType.F32 ? 4 : 2;
        var tableBytes = experts.Experts * experts.Rank * experts.Dim * elementSize;
        if (experts.A.LongLength < tableBytes || experts.B.LongLength < tableBytes)
            throw new ArgumentException($"A and B must hold {tableBytes} bytes each", nameof(experts));
        var segments = segmentOffsets.Length - 1;
        if (segments < 1) throw new ArgumentException("segmentOffsets needs at least two entries", nameof(segmentOffsets));
        if (u.Length < tokens * experts.Dim || output.Length < tokens * experts.Dim)
            throw new ArgumentException($"u and output must hold tokens x dim = {tokens * experts.Dim} floats");
        if (indices.Length < segments * topK || weights.Length < segments * topK)
            throw new ArgumentException($"indices and weights must hold segments x topK = {segments * topK} entries");
        return segments;
    }
}

public static unsafe partial class MomeOps
{
    /// <summary>
    /// Grouped LoRA: out[t] += scale * sum_j weights[s][j] * B_e (A_e u[t]), e = indices[s][j],
    /// for every token t of segment s (tokens segmentOffsets[s] .. segmentOffsets[s+1]-1).
    /// One segment per sequence (its tokens share experts) or one per token.
    /// </summary>
    public static void LoraApply(LoraTables experts, ReadOnlySpan<float> u, int tokens, ReadOnlySpan<long> segmentOffsets,
        ReadOnlySpan<int> indices, ReadOnlySpan<float> weights, int topK, float scale, Span<float> output, int threads = 0)
    {
        var segments = LoraTables.CheckSizes(experts, u, tokens, segmentOffsets, indices, weights, topK, output);
        MomeNativeLibrary.EnsureLoaded();
        var desc = new MomeLoraDesc
        {
            StructSize = (uint)sizeof(MomeLoraDesc),
            WeightType = (MomeTensorType)(int)experts.WeightType, NExperts = experts.Experts, Dim = experts.Dim, Rank = experts.Rank,
        };
        fixed (byte* a = experts.A)
        fixed (byte* b = experts.B)
        fixed (float* pu = u)
        fixed (long* off = segmentOffsets)
        fixed (int* idx = indices)
        fixed (float* w = weights)
        fixed (float* o = output)
        {
            desc.A = a;
            desc.B = b;
            Status.Check(NativeMethods.mome_lora_apply(&desc, pu, tokens, off, segments, idx, w, topK, scale, o, threads));
        }
    }
}
