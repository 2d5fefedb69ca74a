using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;

namespace Mome.Ilgpu.Kernels;

/// <summary><see cref="RouterKernels"/> compiled once per accelerator.</summary>
internal sealed class RouterKernelSet
{
    private static readonly ConditionalWeakTable<Accelerator, RouterKernelSet> Cache = new();

    private readonly int _parallelism;
    private readonly Action<Index1D, Items, ArrayView<float>, int, int, ArrayView<float>, ArrayView<int>, ArrayView<int>> _topK;

    private RouterKernelSet(Accelerator a)
    {
        _parallelism = a.MaxNumThreads;
        _topK = a.LoadAutoGroupedStreamKernel<Index1D, Items, ArrayView<float>, int, int, ArrayView<float>, ArrayView<int>, ArrayView<int>>(
            RouterKernels.TopKRows);
    }

    public static RouterKernelSet For(Accelerator accelerator)
    {
        lock (Cache) return Cache.GetValue(accelerator, a => new RouterKernelSet(a));
    }

    public void TopKRows(int rows, ArrayView<float> scores, int count, int k, ArrayView<float> bestScores, ArrayView<int> bestIndices,
        ArrayView<int> firstBad)
    {
        var extent = Math.Max(1, Math.Min(rows, _parallelism));
        _topK(extent, new Items(rows, extent), scores, count, k, bestScores, bestIndices, firstBad);
    }
}
