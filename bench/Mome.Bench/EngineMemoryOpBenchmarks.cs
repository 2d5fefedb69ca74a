using BenchmarkDotNet.Attributes;
using Mome.Engines;
using Mome.Ilgpu.Memory;
using Mome.Ilgpu.Routing;

namespace Mome.Bench;

/// <summary>
/// The memory layer's ops on both engines (native on 1 thread, ILGPU on its CPU accelerator):
/// the flat and product-key routers (16,384 F32 keys of 64, 8 queries, top-32) and the grouped
/// LoRA (4,096 rank-1 experts of d 256, 32 tokens in 4 sequences, top-32).
/// </summary>
public class EngineMemoryOpBenchmarks
{
    private const int Experts = 16384, KeyDim = 64, Queries = 8, TopK = 32;
    private const int LoraExperts = 4096, Dim = 256, Tokens = 32;

    private RouterSpec _flat = null!, _product = null!;
    private float[] _queries = [];
    private LoraTables _tables = null!;
    private float[] _u = [], _out = [], _weights = [];
    private int[] _indices = [];
    private readonly long[] _offsets = [0, 8, 16, 24, 32];

    [Params(EngineKind.Native, EngineKind.Ilgpu)]
    public EngineKind Engine { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        byte[] Floats(int n) => Enumerable.Range(0, n).SelectMany(_ => BitConverter.GetBytes((float)(random.NextDouble() * 2 - 1))).ToArray();
        _flat = new RouterSpec(RouterKind.Flat, TensorType.F32, Experts, KeyDim, Floats(Experts * KeyDim), TopK);
        _product = new RouterSpec(RouterKind.Product, TensorType.F32, Experts, KeyDim, Floats(2 * 128 * KeyDim / 2), TopK);
        _queries = Enumerable.Range(0, Queries * KeyDim).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _tables = new LoraTables(TensorType.F32, LoraExperts, Dim, 1, Floats(LoraExperts * Dim), Floats(LoraExperts * Dim));
        _u = Enumerable.Range(0, Tokens * Dim).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _out = new float[Tokens * Dim];
        _indices = Enumerable.Range(0, 4 * TopK).Select(_ => random.Next(LoraExperts)).ToArray();
        _weights = Enumerable.Range(0, 4 * TopK).Select(_ => 1.0f / TopK).ToArray();
    }

    [Benchmark]
    public RoutingResult RouteFlat() =>
        Engine == EngineKind.Native ? MomeOps.Route(_flat, _queries, threads: 1) : IlgpuRouter.Route(_flat, _queries);

    [Benchmark]
    public RoutingResult RouteProduct() =>
        Engine == EngineKind.Native ? MomeOps.Route(_product, _queries, threads: 1) : IlgpuRouter.Route(_product, _queries);

    [Benchmark]
    public void GroupedLora()
    {
        if (Engine == EngineKind.Native) MomeOps.LoraApply(_tables, _u, Tokens, _offsets, _indices, _weights, TopK, 1f, _out, threads: 1);
        else IlgpuLora.Apply(_tables, _u, Tokens, _offsets, _indices, _weights, TopK, 1f, _out);
    }
}
