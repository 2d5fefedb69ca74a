using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;
using Mome.Ilgpu.Kernels;
using Mome.Ilgpu.Model;

namespace Mome.Ilgpu.Routing;

/// <summary>
/// The flat and product-key routers of <see cref="MomeOps.Route"/> on an ILGPU accelerator: the
/// same top-k (ties: lower index first), weights and errors. Scores and the per-row top-k run on
/// the device; the product router's k x k pair merge and the softmax run on the host.
/// </summary>
public static class IlgpuRouter
{
    public static RoutingResult Route(RouterSpec spec, ReadOnlySpan<float> queries, IlgpuAccelerator accelerator = IlgpuAccelerator.Cpu)
    {
        var n = CheckArguments(spec, queries, keysHeld: true);
        using var keys = new IlgpuRouterKeys(spec, IlgpuDevice.Get(accelerator));
        CheckQueries(spec, queries, n);
        return RouteChecked(keys, queries, n);
    }

    /// <summary>Routes against keys already on the accelerator (a bank's memory layer routes every
    /// batch against the same keys).</summary>
    public static RoutingResult Route(IlgpuRouterKeys keys, ReadOnlySpan<float> queries)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var n = CheckArguments(keys.Spec, queries, keysHeld: false);
        CheckQueries(keys.Spec, queries, n);
        return RouteChecked(keys, queries, n);
    }

    private static int CheckArguments(RouterSpec spec, ReadOnlySpan<float> queries, bool keysHeld)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.KeyDim < 1 || queries.IsEmpty || queries.Length % spec.KeyDim != 0)
            throw new ArgumentException($"queries must be a non-empty multiple of KeyDim = {spec.KeyDim}", nameof(queries));
        var elementSize = spec.KeyType == TensorType.F32 ? 4 : 2;
        if (keysHeld && spec.Keys.LongLength < spec.Experts * spec.KeyDim * elementSize && spec.Kind == RouterKind.Flat)
            throw new ArgumentException($"Keys holds {spec.Keys.LongLength} bytes; {spec.Experts} x {spec.KeyDim} {spec.KeyType} keys need more", nameof(spec));
        if (spec.TopK < 1) throw new ArgumentOutOfRangeException(nameof(spec), "TopK must be >= 1");
        return queries.Length / (int)spec.KeyDim;
    }

    private static RoutingResult RouteChecked(IlgpuRouterKeys keys, ReadOnlySpan<float> queries, int n)
    {
        var spec = keys.Spec;
        var a = keys.Accelerator;
        var d = (int)spec.KeyDim;
        var k = spec.TopK;
        var result = new RoutingResult(new int[n * k], new float[n * k], new float[n * k], k);
        var scale = 1.0f / MathF.Sqrt(d);
        if (spec.Kind == RouterKind.Flat)
        {
            var (scores, indices) = TopKOfScores(a, keys.Table, queries.ToArray(), (int)spec.Experts, d, n, k, bad => bad);
            for (var q = 0; q < n; q++) Finish(spec, q, scores.AsSpan(q * k, k), indices.AsSpan(q * k, k), scale, result);
            return result;
        }
        var nSub = (int)Math.Round(Math.Sqrt(spec.Experts));
        var half = d / 2;
        var q1 = new float[n * half];
        var q2 = new float[n * half];
        for (var q = 0; q < n; q++)
        {
            queries.Slice(q * d, half).CopyTo(q1.AsSpan(q * half));
            queries.Slice(q * d + half, half).CopyTo(q2.AsSpan(q * half));
        }
        var (s1, i1) = TopKOfScores(a, keys.Table.SubView(0, (long)nSub * half), q1, nSub, half, n, k, bad => bad * nSub);
        var (s2, i2) = TopKOfScores(a, keys.Table.SubView((long)nSub * half, (long)nSub * half), q2, nSub, half, n, k, bad => bad);
        var pairScores = new float[k];
        var pairIndices = new int[k];
        for (var q = 0; q < n; q++)
        {
            // Both lists are best first: once a pair cannot enter the k best, no later partner of the same first half can.
            var filled = 0;
            for (var x = 0; x < k; x++)
                for (var y = 0; y < k; y++)
                {
                    var before = filled;
                    var entered = Offer(pairScores, pairIndices, ref filled, s1[q * k + x] + s2[q * k + y], i1[q * k + x] * nSub + i2[q * k + y]);
                    if (!entered && before == k) break;
                }
            Finish(spec, q, pairScores, pairIndices, scale, result);
        }
        return result;
    }

    /// <summary>Inserts a candidate into a best-first list of at most its length; whether it entered.</summary>
    private static bool Offer(float[] scores, int[] indices, ref int filled, float score, int index)
    {
        var k = scores.Length;
        if (filled == k && !Better(score, index, scores[k - 1], indices[k - 1])) return false;
        var j = filled < k ? filled++ : k - 1;
        for (; j > 0 && Better(score, index, scores[j - 1], indices[j - 1]); j--)
        {
            scores[j] = scores[j - 1];
            indices[j] = indices[j - 1];
        }
        scores[j] = score;
        indices[j] = index;
        return true;
    }

    private static bool Better(float s, int i, float otherScore, int otherIndex) => s > otherScore || (s == otherScore && i < otherIndex);

    /// <summary>Unscaled scores of n queries against a key table on the device, and each query's k best.</summary>
    private static (float[] Scores, int[] Indices) TopKOfScores(Accelerator a, ArrayView<float> keys, float[] queries, int experts, int dim, int n, int k,
        Func<int, int> reportedExpert)
    {
        using var dQueries = a.Allocate1D(queries);
        using var dScores = a.Allocate1D<float>((long)n * experts);
        using var dBest = a.Allocate1D<float>((long)n * k);
        using var dIndices = a.Allocate1D<int>((long)n * k);
        using var dBad = a.Allocate1D<int>(n);
        LlamaKernelSet.For(a).Matmul(keys, dQueries.View, dScores.View, experts, dim, n);
        RouterKernelSet.For(a).TopKRows(n, dScores.View, experts, k, dBest.View, dIndices.View, dBad.View);
        var bad = dBad.GetAsArray1D();
        for (var q = 0; q < n; q++)
            if (bad[q] >= 0)
                throw new MomeException(MomeErrorCode.InvalidArgument,
                    $"router: the score of expert {reportedExpert(bad[q])} for query {q} is not finite (a key holds NaN or Inf)");
        return (dBest.GetAsArray1D(), dIndices.GetAsArray1D());
    }

    /// <summary>Indices, softmax(score * scale / temperature) weights and scaled scores, as the native router's finish step.</summary>
    private static void Finish(RouterSpec spec, int q, ReadOnlySpan<float> best, ReadOnlySpan<int> indices, float scale, RoutingResult result)
    {
        var k = spec.TopK;
        var top = best[0] * scale;
        Span<double> e = stackalloc double[k];
        double sum = 0;
        for (var j = 0; j < k; j++)
        {
            e[j] = Math.Exp(((double)best[j] * scale - top) / spec.Temperature);
            sum += e[j];
        }
        for (var j = 0; j < k; j++)
        {
            result.Indices[q * k + j] = indices[j];
            result.Weights[q * k + j] = (float)(e[j] / sum);
            result.Scores[q * k + j] = best[j] * scale;
        }
    }

    internal static float[] KeysAsF32(RouterSpec spec)
    {
        var count = spec.Kind == RouterKind.Flat ? spec.Experts * spec.KeyDim : 2 * (long)Math.Round(Math.Sqrt(spec.Experts)) * (spec.KeyDim / 2);
        return Widening.ToF32(spec.Keys, spec.KeyType, checked((int)count));
    }

    /// <summary>The native router's checks of a spec, in its order and words (before the queries').</summary>
    internal static void CheckSpec(RouterSpec r)
    {
        static MomeException Bad(string message) => new(MomeErrorCode.InvalidArgument, message);
        if (r.KeyType is not (TensorType.F32 or TensorType.F16 or TensorType.BF16))
            throw new MomeException(MomeErrorCode.Unsupported, $"router: key type {r.KeyType} is not F32, F16 or BF16");
        if (!Enum.IsDefined(r.Kind)) throw Bad($"router: unknown kind {(int)r.Kind}");
        if (r.Experts is < 1 or > int.MaxValue) throw Bad($"router: n_experts = {r.Experts} is outside 1..{int.MaxValue} (expert indices are int32)");
        if (r.KeyDim is < 1 or > 65536) throw Bad($"router: key_dim = {r.KeyDim} is outside 1..65536");
        if (r.TopK > r.Experts || r.TopK > 65536) throw Bad($"router: top_k = {r.TopK} is outside 1..{Math.Min(r.Experts, 65536)}");
        if (!(r.Temperature > 0) || !float.IsFinite(r.Temperature)) throw Bad("router: temperature must be finite and > 0");
        if (r.Kind == RouterKind.Product)
        {
            var nSub = (long)Math.Round(Math.Sqrt(r.Experts));
            if (nSub * nSub != r.Experts) throw Bad($"router: product keys need a square number of experts, not {r.Experts}");
            if (r.KeyDim % 2 != 0) throw Bad("router: product keys need an even key_dim");
            if (r.TopK > nSub) throw Bad($"router: top_k = {r.TopK} is more than the {nSub} sub-keys of each half");
        }
    }

    private static void CheckQueries(RouterSpec r, ReadOnlySpan<float> queries, int n)
    {
        for (var i = 0; i < n * r.KeyDim; i++)
            if (!float.IsFinite(queries[i]))
                throw new MomeException(MomeErrorCode.InvalidArgument, $"router: query {i / r.KeyDim} has a non-finite value ({AsPrintf(queries[i])}) at element {i % r.KeyDim}");
    }

    /// <summary>A non-finite value as C's %g prints it.</summary>
    private static string AsPrintf(float x) => (float.IsNegative(x) ? "-" : "") + (float.IsNaN(x) ? "nan" : "inf");
}
