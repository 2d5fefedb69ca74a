using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;
using Mome.Ilgpu.Kernels;
using Mome.Ilgpu.Model;

namespace Mome.Ilgpu.Memory;

/// <summary>
/// <see cref="MomeOps.LoraApply"/> on an ILGPU accelerator: grouped LoRA in both routing forms
/// (one segment per sequence, or one per token), with the native op's checks and messages.
/// </summary>
public static class IlgpuLora
{
    public static void Apply(LoraTables experts, ReadOnlySpan<float> u, int tokens, ReadOnlySpan<long> segmentOffsets, ReadOnlySpan<int> indices,
        ReadOnlySpan<float> weights, int topK, float scale, Span<float> output, IlgpuAccelerator accelerator = IlgpuAccelerator.Cpu)
    {
        var segments = LoraTables.CheckSizes(experts, u, tokens, segmentOffsets, indices, weights, topK, output);
        Check(experts, tokens, segmentOffsets, segments, indices, weights, topK, scale);

        var count = checked((int)(experts.Experts * experts.Rank * experts.Dim));
        var a = IlgpuDevice.Get(accelerator);
        using var dA = a.Allocate1D(Widening.ToF32(experts.A, experts.WeightType, count));
        using var dB = a.Allocate1D(Widening.ToF32(experts.B, experts.WeightType, count));
        using var dU = a.Allocate1D(u[..(tokens * (int)experts.Dim)].ToArray());
        using var dOut = a.Allocate1D(output[..(tokens * (int)experts.Dim)].ToArray());
        Run(a, dA.View, dB.View, dU.View, tokens, (int)experts.Dim, experts.Rank, SegmentOf(segmentOffsets, segments, tokens),
            indices[..(segments * topK)].ToArray(), weights[..(segments * topK)].ToArray(), topK, scale, dOut.View);
        dOut.GetAsArray1D().CopyTo(output);
    }

    /// <summary>The segment of each token.</summary>
    internal static int[] SegmentOf(ReadOnlySpan<long> segmentOffsets, int segments, int tokens)
    {
        var segmentOf = new int[tokens];
        for (var s = 0; s < segments; s++)
            for (var t = segmentOffsets[s]; t < segmentOffsets[s + 1]; t++) segmentOf[t] = s;
        return segmentOf;
    }

    /// <summary>output += the grouped-LoRA delta, everything but the routes already on the
    /// accelerator (A and B as F32 [experts x rank x dim]; u and output [tokens x dim]); the
    /// routes were checked by <see cref="Check"/>.</summary>
    internal static void Run(Accelerator a, ArrayView<float> A, ArrayView<float> B, ArrayView<float> u, int tokens, int dim, int rank,
        int[] segmentOf, int[] indices, float[] weights, int topK, float scale, ArrayView<float> output)
    {
        var kernels = LoraKernelSet.For(a);
        using var dSegmentOf = a.Allocate1D(segmentOf);
        using var dIndices = a.Allocate1D(indices);
        using var dWeights = a.Allocate1D(weights);
        using var z = a.Allocate1D<float>((long)tokens * topK * rank);
        kernels.Down(tokens * topK * rank, A, u, dSegmentOf.View, dIndices.View, z.View, dim, rank, topK);
        kernels.Up(tokens * dim, B, z.View, dSegmentOf.View, dIndices.View, dWeights.View, output, dim, rank, topK, scale);
        a.Synchronize();
    }

    /// <summary>The native op's checks (lora.cpp), in its order and words.</summary>
    internal static void Check(LoraTables e, int tokens, ReadOnlySpan<long> offsets, int segments, ReadOnlySpan<int> indices,
        ReadOnlySpan<float> weights, int topK, float scale)
    {
        static MomeException Bad(string message) => new(MomeErrorCode.InvalidArgument, message);
        if (e.WeightType is not (TensorType.F32 or TensorType.F16 or TensorType.BF16))
            throw new MomeException(MomeErrorCode.Unsupported, $"expert weight type {e.WeightType} is not F32, F16 or BF16");
        if (e.Experts < 1 || e.Dim < 1 || e.Rank < 1 || e.Dim > 1 << 24 || e.Rank > 4096 || e.Experts > 1L << 40)
            throw Bad("expert tables: n_experts, dim and rank must be positive and sane");
        if (tokens < 1 || topK < 1)
            throw Bad($"grouped LoRA: n_tokens = {tokens}, n_segments = {segments}, top_k = {topK} must all be >= 1");
        if (!float.IsFinite(scale)) throw Bad("grouped LoRA: scale is not finite");
        if (offsets[0] != 0 || offsets[segments] != tokens) throw Bad($"grouped LoRA: segment offsets must run from 0 to n_tokens = {tokens}");
        for (var s = 0; s < segments; s++)
            if (offsets[s + 1] < offsets[s]) throw Bad($"grouped LoRA: segment {s} ends before it starts");
        for (var i = 0; i < segments * topK; i++)
        {
            if (indices[i] < 0 || indices[i] >= e.Experts)
                throw new MomeException(MomeErrorCode.OutOfRange,
                    $"grouped LoRA: expert index {indices[i]} (segment {i / topK}) is outside 0..{e.Experts - 1}");
            if (!float.IsFinite(weights[i])) throw Bad($"grouped LoRA: weight {i % topK} of segment {i / topK} is not finite");
        }
    }
}
