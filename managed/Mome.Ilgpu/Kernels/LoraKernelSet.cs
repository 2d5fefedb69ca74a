using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;
using View = ILGPU.ArrayView<float>;
using Ints = ILGPU.ArrayView<int>;

namespace Mome.Ilgpu.Kernels;

/// <summary><see cref="LoraKernels"/> compiled once per accelerator.</summary>
internal sealed class LoraKernelSet
{
    private static readonly ConditionalWeakTable<Accelerator, LoraKernelSet> Cache = new();

    private readonly int _parallelism;
    private readonly Action<Index1D, Items, View, View, Ints, Ints, View, int, int, int> _down;
    private readonly Action<Index1D, Items, View, View, Ints, Ints, View, View, int, int, int, float> _up;

    private LoraKernelSet(Accelerator a)
    {
        _parallelism = a.MaxNumThreads;
        _down = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, Ints, Ints, View, int, int, int>(LoraKernels.Down);
        _up = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, Ints, Ints, View, View, int, int, int, float>(LoraKernels.Up);
    }

    public static LoraKernelSet For(Accelerator accelerator)
    {
        lock (Cache) return Cache.GetValue(accelerator, a => new LoraKernelSet(a));
    }

    public void Down(int count, View a, View u, Ints segmentOf, Ints indices, View z, int dim, int rank, int topK) =>
        _down(Extent(count), new Items(count, Extent(count)), a, u, segmentOf, indices, z, dim, rank, topK);

    public void Up(int count, View b, View z, Ints segmentOf, Ints indices, View weights, View output, int dim, int rank, int topK, float scale) =>
        _up(Extent(count), new Items(count, Extent(count)), b, z, segmentOf, indices, weights, output, dim, rank, topK, scale);

    private int Extent(int count) => Math.Max(1, Math.Min(count, _parallelism));
}
