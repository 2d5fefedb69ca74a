using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;
using View = ILGPU.ArrayView<float>;
using Ints = ILGPU.ArrayView<int>;

namespace Mome.Ilgpu.Kernels;

/// <summary>The kernels of <see cref="LlamaKernels"/> compiled for one accelerator: compiled
/// once per accelerator (<see cref="For"/>) and shared by every model on it. Each method
/// launches over <c>count</c> items with at most as many threads as the accelerator runs at once.</summary>
internal sealed class LlamaKernelSet
{
    private static readonly ConditionalWeakTable<Accelerator, LlamaKernelSet> Cache = new();

    private readonly int _tile;
    private readonly int _parallelism;
    private readonly bool _tiledMatmul;
    private readonly Action<Index1D, Items, View, Ints, View, int> _embed;
    private readonly Action<Index1D, Items, View, View, View, int, float> _rmsNorm;
    private readonly Action<Index1D, Items, View, View> _roundToF16, _roundToBF16;
    private readonly Action<Index1D, Items, View, View, View, int, int> _matmul;
    private readonly Action<KernelConfig, View, View, View, int, int, int> _matmulTiled;
    private readonly Action<Index1D, Items, View, View, View, int, int, int> _rope;
    private readonly Action<Index1D, Items, View, View, Ints, Ints, View, View, int, int> _storeKv;
    private readonly Action<Index1D, Items, View, View, View, Ints, Ints, View, int, int, int, int> _attention;
    private readonly Action<Index1D, Items, View, View, View> _swiGlu;
    private readonly Action<Index1D, Items, View, View> _add;
    private readonly Action<Index1D, Items, View, Ints, View, int> _gatherRows;

    private LlamaKernelSet(Accelerator a)
    {
        _tile = LlamaKernels.MaxTile;
        while (_tile * _tile > a.MaxNumThreadsPerGroup) _tile /= 2;
        _parallelism = a.MaxNumThreads;
        // Barriers are cheap on a GPU and costly between the CPU accelerator's OS threads.
        _tiledMatmul = a is not CPUAccelerator;
        _embed = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, Ints, View, int>(LlamaKernels.Embed);
        _rmsNorm = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, View, int, float>(LlamaKernels.RmsNorm);
        _roundToF16 = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View>(LlamaKernels.RoundToF16);
        _roundToBF16 = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View>(LlamaKernels.RoundToBF16);
        _matmul = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, View, int, int>(LlamaKernels.Matmul);
        _matmulTiled = a.LoadStreamKernel<View, View, View, int, int, int>(LlamaKernels.MatmulTiled);
        _rope = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, View, int, int, int>(LlamaKernels.Rope);
        _storeKv = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, Ints, Ints, View, View, int, int>(LlamaKernels.StoreKv);
        _attention = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, View, Ints, Ints, View, int, int, int, int>(LlamaKernels.Attention);
        _swiGlu = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View, View>(LlamaKernels.SwiGlu);
        _add = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, View>(LlamaKernels.Add);
        _gatherRows = a.LoadAutoGroupedStreamKernel<Index1D, Items, View, Ints, View, int>(LlamaKernels.GatherRows);
    }

    public static LlamaKernelSet For(Accelerator accelerator)
    {
        lock (Cache) return Cache.GetValue(accelerator, a => new LlamaKernelSet(a));
    }

    public void Embed(int count, View table, Ints tokens, View x, int d) => _embed(Extent(count), Over(count), table, tokens, x, d);

    public void RmsNorm(int rows, View x, View weight, View output, int d, float eps) =>
        _rmsNorm(Extent(rows), Over(rows), x, weight, output, d, eps);

    public void RoundToF16(int count, View x, View output) => _roundToF16(Extent(count), Over(count), x, output);
    public void RoundToBF16(int count, View x, View output) => _roundToBF16(Extent(count), Over(count), x, output);

    /// <summary>y = W x for n tokens, W of rows x cols: the tiled kernel on GPUs, one output per step on the CPU.</summary>
    public void Matmul(View w, View x, View y, int rows, int cols, int n)
    {
        if (_tiledMatmul) MatmulTiled(w, x, y, rows, cols, n);
        else _matmul(Extent(rows * n), Over(rows * n), w, x, y, rows, cols);
    }

    /// <summary>The tiled kernel whatever the accelerator (the CPU accelerator runs it in tests).</summary>
    public void MatmulTiled(View w, View x, View y, int rows, int cols, int n)
    {
        var groups = new Index2D((rows + _tile - 1) / _tile, (n + _tile - 1) / _tile);
        _matmulTiled(new KernelConfig(groups, new Index2D(_tile, _tile)), w, x, y, rows, cols, n);
    }

    public void Rope(int count, View v, View cos, View sin, int heads, int headDim, int pairs) =>
        _rope(Extent(count), Over(count), v, cos, sin, heads, headDim, pairs);

    public void StoreKv(int count, View k, View v, Ints sequenceIds, Ints positions, View kCache, View vCache, int kvDim, int contextLength) =>
        _storeKv(Extent(count), Over(count), k, v, sequenceIds, positions, kCache, vCache, kvDim, contextLength);

    public void Attention(int count, View q, View kCache, View vCache, Ints sequenceIds, Ints positions, View output, int heads, int kvHeads,
        int headDim, int contextLength) =>
        _attention(Extent(count), Over(count), q, kCache, vCache, sequenceIds, positions, output, heads, kvHeads, headDim, contextLength);

    public void SwiGlu(int count, View gate, View up, View output) => _swiGlu(Extent(count), Over(count), gate, up, output);
    public void Add(int count, View x, View y) => _add(Extent(count), Over(count), x, y);

    public void GatherRows(int count, View x, Ints rows, View output, int d) => _gatherRows(Extent(count), Over(count), x, rows, output, d);

    private int Extent(int count) => Math.Max(1, Math.Min(count, _parallelism));
    private Items Over(int count) => new(count, Extent(count));
}
