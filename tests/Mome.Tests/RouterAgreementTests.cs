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
    [TestCase(RouterKind.Flat, TensorType.F32, 3 * 4096 + 37, 16, 32)] // several top-k chunks and a short last one
    [TestCase(RouterKind.Flat, TensorType.BF16, 4097, 8, 4)]
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

    [Test]
    public void TiesAcrossTopKChunksGoToTheLowerIndex()
    {
        // Six experts share one key far ahead of the others, on both sides of the 4096-score
        // chunk boundaries of the ILGPU top-k: they come first, in index order.
        const int experts = 10000, dim = 16;
        var query = Queries(1, dim, 8);
        int[] tied = [9999, 8192, 4096, 5, 8191, 4095];
        var values = new float[experts * dim];
        var rng = new Random(6);
        for (var i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
        foreach (var e in tied)
            for (var i = 0; i < dim; i++) values[e * dim + i] = 5 * query[i];
        var spec = new RouterSpec(RouterKind.Flat, TensorType.F32, experts, dim, values.SelectMany(BitConverter.GetBytes).ToArray(), 8);
        var ilgpu = IlgpuRouter.Route(spec, query);
        Assert.That(ilgpu.Indices[..6], Is.EqualTo(new[] { 5, 4095, 4096, 8191, 8192, 9999 }));
        AssertSame(MomeOps.Route(spec, query, threads: 1), ilgpu);
    }

    [TestCase(RouterKind.Flat)]
    [TestCase(RouterKind.Product)]
    public void KeysHeldOnTheAcceleratorRouteAsAFreshRouter(RouterKind kind)
    {
        const long experts = 1024, dim = 16;
        var count = kind == RouterKind.Flat ? experts * dim : 2 * 32 * (dim / 2);
        var spec = new RouterSpec(kind, TensorType.F16, experts, dim, Keys(TensorType.F16, count, 9), 8);
        using var held = new IlgpuRouterKeys(spec);
        Assert.That(held.Spec.Keys, Is.Empty, "the host copy of the keys is not kept");
        foreach (var seed in new[] { 1, 2, 3 })
        {
            var queries = Queries(3, dim, seed);
            var fresh = IlgpuRouter.Route(spec, queries);
            var routed = IlgpuRouter.Route(held, queries);
            Assert.That(routed.Indices, Is.EqualTo(fresh.Indices));
            Assert.That(routed.Weights, Is.EqualTo(fresh.Weights));
            AssertSame(MomeOps.Route(spec, queries, threads: 1), routed);
        }
        var bad = Queries(1, dim, 4);
        bad[3] = float.NaN;
        Assert.That(Assert.Throws<MomeException>(() => IlgpuRouter.Route(held, bad))!.Message,
            Is.EqualTo(Assert.Throws<MomeException>(() => MomeOps.Route(spec, bad, threads: 1))!.Message));
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
        // Non-finite keys in the second and third top-k chunks: the error names the lower expert.
        var manyKeys = Keys(TensorType.F32, 10000 * 8, 3);
        BitConverter.GetBytes(float.PositiveInfinity).CopyTo(manyKeys, 4 * (8 * 9000 + 1));
        BitConverter.GetBytes(float.NaN).CopyTo(manyKeys, 4 * (8 * 5000 + 6));
        yield return new TestCaseData(new RouterSpec(RouterKind.Flat, TensorType.F32, 10000, 8, manyKeys, 4), Queries(2, 8, 1)).SetName("bad keys in two chunks");
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
