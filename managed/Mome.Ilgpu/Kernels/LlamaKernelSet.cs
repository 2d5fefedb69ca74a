using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Mome.Ilgpu.Kernels;

/// <summary>The kernels of <see cref="LlamaKernels"/> compiled for one accelerator; compiled
/// once per accelerator (<see cref="For"/>) and shared by every model on it.</summary>
internal sealed class LlamaKernelSet
{
    private static readonly ConditionalWeakTable<Accelerator, LlamaKernelSet> Cache = new();

    private LlamaKernelSet(Accelerator a)
    {
        Accelerator = a;
        Embed = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(LlamaKernels.Embed);
        RmsNorm = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(LlamaKernels.RmsNorm);
        RoundToF16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(LlamaKernels.RoundToF16);
        RoundToBF16 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(LlamaKernels.RoundToBF16);
        Matmul = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(LlamaKernels.MatmulTiled);
        Rope = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(LlamaKernels.Rope);
        StoreKv = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>,
            ArrayView<float>, ArrayView<float>, int, int>(LlamaKernels.StoreKv);
        Attention = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>,
            ArrayView<int>, ArrayView<float>, int, int, int, int, float>(LlamaKernels.Attention);
        SwiGlu = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(LlamaKernels.SwiGlu);
        Add = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>>(LlamaKernels.Add);
        GatherRows = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(LlamaKernels.GatherRows);
    }

    public static LlamaKernelSet For(Accelerator accelerator)
    {
        lock (Cache) return Cache.GetValue(accelerator, a => new LlamaKernelSet(a));
    }

    public Accelerator Accelerator { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> Embed { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> RmsNorm { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>> RoundToF16 { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>> RoundToBF16 { get; }
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> Matmul { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> Rope { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int> StoreKv { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, int, float> Attention { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> SwiGlu { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<float>> Add { get; }
    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> GatherRows { get; }

    /// <summary>y = W x for n tokens, W of rows x cols, through the tiled kernel.</summary>
    public void MatmulRows(ArrayView<float> w, ArrayView<float> x, ArrayView<float> y, int rows, int cols, int n)
    {
        var groups = new Index2D((rows + LlamaKernels.Tile - 1) / LlamaKernels.Tile, (n + LlamaKernels.Tile - 1) / LlamaKernels.Tile);
        Matmul(new KernelConfig(groups, new Index2D(LlamaKernels.Tile, LlamaKernels.Tile)), w, x, y, rows, cols, n);
    }
}
