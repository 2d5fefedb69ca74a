using Mome.Interop;
using Mome.Native;

namespace Mome;

/// <summary>A router over caller-held keys, for <see cref="MomeOps.Route"/>. Flat: Keys is
/// [Experts x KeyDim]; product: the two sub-key tables [2 x sqrt(Experts) x KeyDim/2].</summary>
public sealed record RouterSpec(RouterKind Kind, TensorType KeyType, long Experts, long KeyDim, byte[] Keys, int TopK,
    float Temperature = 1.0f);

/// <summary>Routing results, [queries x TopK] each, best first.</summary>
public sealed record RoutingResult(int[] Indices, float[] Weights, float[] Scores, int TopK);

public static unsafe partial class MomeOps
{
    /// <summary>
    /// Routes F32 queries [n x KeyDim]: the top-k experts by q.k / sqrt(KeyDim) (ties: lower
    /// index first) and their softmax(score / temperature) weights.
    /// </summary>
    public static RoutingResult Route(RouterSpec spec, ReadOnlySpan<float> queries, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.KeyDim < 1 || queries.IsEmpty || queries.Length % spec.KeyDim != 0)
            throw new ArgumentException($"queries must be a non-empty multiple of KeyDim = {spec.KeyDim}", nameof(queries));
        var elementSize = spec.KeyType == TensorType.F32 ? 4 : 2;
        if (spec.Keys.LongLength < spec.Experts * spec.KeyDim * elementSize && spec.Kind == RouterKind.Flat)
            throw new ArgumentException($"Keys holds {spec.Keys.LongLength} bytes; {spec.Experts} x {spec.KeyDim} {spec.KeyType} keys need more", nameof(spec));
        var n = queries.Length / spec.KeyDim;
        var k = spec.TopK > 0 ? spec.TopK : throw new ArgumentOutOfRangeException(nameof(spec), "TopK must be >= 1");
        var result = new RoutingResult(new int[n * k], new float[n * k], new float[n * k], k);
        MomeNativeLibrary.EnsureLoaded();
        fixed (byte* keys = spec.Keys)
        fixed (float* q = queries)
        fixed (int* indices = result.Indices)
        fixed (float* weights = result.Weights)
        fixed (float* scores = result.Scores)
        {
            var desc = new MomeRouterDesc
            {
                StructSize = (uint)sizeof(MomeRouterDesc),
                Kind = (MomeRouterKind)(int)spec.Kind, KeyType = (MomeTensorType)(int)spec.KeyType, NExperts = spec.Experts,
                KeyDim = spec.KeyDim, Keys = keys, TopK = spec.TopK, Temperature = spec.Temperature,
            };
            Status.Check(NativeMethods.mome_route(&desc, q, n, indices, weights, scores, threads));
        }
        return result;
    }
}
