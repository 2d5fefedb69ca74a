using Mome.Ilgpu.Routing;

namespace Mome.Tests;

/// <summary>The ILGPU routers (CPU accelerator) against the native ones: the same top-k indices
/// in the same order (ties: lower index first), the same weights, the same errors.</summary>
public sealed class RouterAgreementTests
{
    private static byte[] Keys(TensorType type, long count, int seed, Func<int, float>? value = null)
    {
        var rng = new Random(seed);
        var values = Enumerable.Range(0, (int)count).Select(i => value?.Invoke(i) ?? (float)(rng.NextDouble() * 2 - 1)).ToArray();
        return type switch
        {
            TensorType.F32 => values.SelectMany(BitConverter.GetBytes).ToArray(),
            TensorType.F16 => values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray(),
            _ => values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16))).ToArray(),
        };
    }

    private static float[] Queries(int n, long dim, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n * (int)dim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static void AssertSame(RoutingResult expected, RoutingResult actual)
    {
        Assert.That(actual.Indices, Is.EqualTo(expected.Indices), "the same experts in the same order");
        Assert.That(ForwardOracleTests.MaxAbsDiff(actual.Weights, expected.Weights), Is.LessThanOrEqualTo(1e-5));
        Assert.That(ForwardOracleTests.MaxAbsDiff(actual.Scores, expected.Scores), Is.LessThanOrEqualTo(1e-5));
    }

    [TestCase(RouterKind.Flat, TensorType.F32, 4096, 32, 32)]
    [TestCase(RouterKind.Flat, TensorType.F16, 1000, 24, 8)]
    [TestCase(RouterKind.Flat, TensorType.BF16, 777, 16, 5)]
    [TestCase(RouterKind.Product, TensorType.F32, 4096, 32, 32)]
    [TestCase(RouterKind.Product, TensorType.BF16, 1024, 16, 8)]
    public void TopKMatchesTheNativeRouter(RouterKind kind, TensorType type, long experts, long dim, int k)
    {
        var count = kind == RouterKind.Flat ? experts * dim : 2 * (long)Math.Sqrt(experts) * (dim / 2);
        var spec = new RouterSpec(kind, type, experts, dim, Keys(type, count, 3), k, Temperature: 0.7f);
        var queries = Queries(9, dim, 4);
        AssertSame(MomeOps.Route(spec, queries, threads: 1), IlgpuRouter.Route(spec, queries));
    }

    [TestCase(RouterKind.Flat)]
    [TestCase(RouterKind.Product)]
    public void TiesGoToTheLowerIndex(RouterKind kind)
    {
        // Every key the same: all scores tie, so the k best are experts 0..k-1 (flat) and, for
        // product keys, pairs (0, 0..k-1) by the same rule.
        const long experts = 256, dim = 8;
        const int k = 6;
        var count = kind == RouterKind.Flat ? experts * dim : 2 * 16 * (dim / 2);
        var spec = new RouterSpec(kind, TensorType.F32, experts, dim, Keys(TensorType.F32, count, 1, _ => 0.25f), k);
        var queries = Queries(2, dim, 5);
        var ilgpu = IlgpuRouter.Route(spec, queries);
        Assert.That(ilgpu.Indices, Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5 }));
        AssertSame(MomeOps.Route(spec, queries, threads: 1), ilgpu);
    }

    public static IEnumerable<TestCaseData> BadSpecs()
    {
        var keys = Keys(TensorType.F32, 64 * 8, 2);
        yield return new TestCaseData(new RouterSpec(RouterKind.Flat, TensorType.F32, 64, 8, keys, 65), Queries(1, 8, 1)).SetName("top_k > experts");
        yield return new TestCaseData(new RouterSpec(RouterKind.Flat, TensorType.F32, 64, 8, keys, 4, Temperature: 0), Queries(1, 8, 1)).SetName("temperature 0");
        yield return new TestCaseData(new RouterSpec(RouterKind.Product, TensorType.F32, 60, 8, keys, 4), Queries(1, 8, 1)).SetName("product, not square");
        yield return new TestCaseData(new RouterSpec(RouterKind.Product, TensorType.F32, 64, 8, keys, 9), Queries(1, 8, 1)).SetName("product, top_k > sub-keys");
        yield return new TestCaseData(new RouterSpec(RouterKind.Flat, TensorType.Q8_0, 64, 8, keys, 4), Queries(1, 8, 1)).SetName("quantized keys");
        var nanKey = (byte[])keys.Clone();
        BitConverter.GetBytes(float.NaN).CopyTo(nanKey, 4 * (8 * 37 + 3));
        yield return new TestCaseData(new RouterSpec(RouterKind.Flat, TensorType.F32, 64, 8, nanKey, 4), Queries(1, 8, 1)).SetName("NaN key");
        var query = Queries(2, 8, 1);
        query[11] = float.PositiveInfinity;
        yield return new TestCaseData(new RouterSpec(RouterKind.Flat, TensorType.F32, 64, 8, keys, 4), query).SetName("infinite query");
    }

    [TestCaseSource(nameof(BadSpecs))]
    public void BadInputGivesTheNativeError(RouterSpec spec, float[] queries)
    {
        var native = Assert.Throws<MomeException>(() => MomeOps.Route(spec, queries, threads: 1))!;
        var ilgpu = Assert.Throws<MomeException>(() => IlgpuRouter.Route(spec, queries))!;
        Assert.That((ilgpu.Code, ilgpu.Message), Is.EqualTo((native.Code, native.Message)));
    }
}
