using BenchmarkDotNet.Attributes;

namespace Mome.Bench;

/// <summary>
/// The CPU matmul kernels at the `small` preset's FFN shape (2048 x 768): GEMV (1 token,
/// decode) and GEMM (128 tokens, prefill), F32/F16/BF16 weights, fast path at 1 and 2
/// threads. (The reference loop is compared with it in the native tests, not timed here.)
/// </summary>
[MemoryDiagnoser]
public class MatmulBenchmarks
{
    private const int Rows = 2048;
    private const int Cols = 768;

    private byte[] _weight = [];
    private float[] _x = [];
    private float[] _y = [];

    [Params(TensorType.F32, TensorType.F16, TensorType.BF16)]
    public TensorType WeightType { get; set; }

    [Params(1, 128)]
    public int Tokens { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        var values = Enumerable.Range(0, Rows * Cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _weight = WeightType switch
        {
            TensorType.F32 => values.SelectMany(BitConverter.GetBytes).ToArray(),
            TensorType.F16 => values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray(),
            _ => values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray(),
        };
        _x = Enumerable.Range(0, Tokens * Cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        _y = new float[Tokens * Rows];
    }

    [Benchmark]
    public void Fast() => MomeOps.MatMul(_weight, WeightType, Rows, Cols, _x, Tokens, _y, Threads);
}
