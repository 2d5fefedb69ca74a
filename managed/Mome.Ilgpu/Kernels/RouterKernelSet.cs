using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;
using Floats = ILGPU.ArrayView<float>;
using Ints = ILGPU.ArrayView<int>;

namespace Mome.Ilgpu.Kernels;

/// <summary><see cref="RouterKernels"/> compiled once per accelerator.</summary>
internal sealed class RouterKernelSet
{
    /// <summary>Scores one thread scans in the first pass of the top-k.</summary>
    internal const int ChunkLength = 4096;

    private static readonly ConditionalWeakTable<Accelerator, RouterKernelSet> Cache = new();

    private readonly Accelerator _accelerator;
    private readonly int _parallelism;
    private readonly Action<Index1D, Items, Floats, int, int, int, int, Floats, Ints, Ints, Ints> _chunks;
    private readonly Action<Index1D, Items, Floats, Ints, Ints, Ints, int, int, Floats, Ints, Ints> _merge;

    private RouterKernelSet(Accelerator a)
    {
        _accelerator = a;
        _parallelism = a.MaxNumThreads;
        _chunks = a.LoadAutoGroupedStreamKernel<Index1D, Items, Floats, int, int, int, int, Floats, Ints, Ints, Ints>(RouterKernels.TopKChunks);
        _merge = a.LoadAutoGroupedStreamKernel<Index1D, Items, Floats, Ints, Ints, Ints, int, int, Floats, Ints, Ints>(RouterKernels.MergeChunks);
    }

    public static RouterKernelSet For(Accelerator accelerator)
    {
        lock (Cache) return Cache.GetValue(accelerator, a => new RouterKernelSet(a));
    }

    /// <summary>The k best of each of <paramref name="rows"/> rows of <paramref name="count"/>
    /// scores, best first; <paramref name="firstBad"/>[row]: its first non-finite column, or -1.</summary>
    public void TopKRows(int rows, Floats scores, int count, int k, Floats bestScores, Ints bestIndices, Ints firstBad,
        int chunkLength = ChunkLength)
    {
        var chunks = (count + chunkLength - 1) / chunkLength;
        var lists = checked(rows * chunks);
        using var chunkScores = _accelerator.Allocate1D<float>((long)lists * k);
        using var chunkIndices = _accelerator.Allocate1D<int>((long)lists * k);
        using var chunkFilled = _accelerator.Allocate1D<int>(lists);
        using var chunkBad = _accelerator.Allocate1D<int>(lists);
        _chunks(Extent(lists), new Items(lists, Extent(lists)), scores, count, k, chunkLength, chunks, chunkScores.View, chunkIndices.View,
            chunkFilled.View, chunkBad.View);
        _merge(Extent(rows), new Items(rows, Extent(rows)), chunkScores.View, chunkIndices.View, chunkFilled.View, chunkBad.View, chunks, k,
            bestScores, bestIndices, firstBad);
        _accelerator.Synchronize();
    }

    private int Extent(int count) => Math.Max(1, Math.Min(count, _parallelism));
}
