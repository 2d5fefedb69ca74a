namespace Mome.Tests;

/// <summary>
/// The memory layer's math written out plainly in double precision from DESIGN.md, sharing no
/// code with the engine: the route (q = W_q (mean(u) - centre), scores q.k / sqrt(d_k), top k best
/// first with ties to the lower index, weights softmax(score / temperature)) and the delta
/// alpha / r * sum_j w_j B_j (A_j u_t).
/// </summary>
internal static class MemoryReference
{
    /// <summary>Every expert's score, best first (ties to the lower index), for the mean input
    /// <paramref name="mean"/> of memory layer 0 of <paramref name="bank"/>.</summary>
    public static (double Score, int Index)[] RankExperts(MemoryBank bank, float[] mean)
    {
        var options = bank.Options;
        var router = bank.Router(0);
        var wq = router.GetQueryProjection();
        var keys = router.GetKeyRows(0, (int)router.KeyRows);
        var centre = bank.GetCentre(0);
        var (d, keyDim) = (mean.Length, (int)options.KeyDim);
        var q = new double[keyDim];
        for (var r = 0; r < keyDim; r++)
            for (var i = 0; i < d; i++) q[r] += (double)wq[r * d + i] * (mean[i] - centre[i]);
        double Score(long e)
        {
            double dot = 0;
            if (options.Router == RouterKind.Flat)
                for (var i = 0; i < keyDim; i++) dot += q[i] * keys[e * keyDim + i];
            else
            {
                // Expert i * n_sub + j: the first half of q against sub-key i, the second against sub-key n_sub + j.
                var (half, nSub) = (keyDim / 2, router.SubKeys);
                for (var i = 0; i < half; i++)
                    dot += q[i] * keys[e / nSub * half + i] + q[half + i] * keys[(nSub + e % nSub) * half + i];
            }
            return dot / Math.Sqrt(keyDim);
        }
        return [.. Enumerable.Range(0, (int)options.Experts).Select(e => (Score: Score(e), Index: e))
            .OrderByDescending(x => x.Score).ThenBy(x => x.Index)];
    }

    /// <summary>softmax(score / temperature) of the top k of <paramref name="ranked"/>.</summary>
    public static double[] Weights((double Score, int Index)[] ranked, int k, double temperature)
    {
        var exp = ranked.Take(k).Select(x => Math.Exp((x.Score - ranked[0].Score) / temperature)).ToArray();
        return [.. exp.Select(x => x / exp.Sum())];
    }

    /// <summary>scale * sum_j w_j B_j (A_j u) for one input u (the memory layer's scale is
    /// alpha / r), with A_j and B_j transposed as <see cref="MemoryBank.GetExpert"/> gives them
    /// (rank rows of d).</summary>
    public static double[] Delta(MemoryBank bank, ReadOnlySpan<double> u, IReadOnlyList<int> experts, IReadOnlyList<double> weights,
        double scale)
    {
        var (d, rank) = (u.Length, bank.Options.Rank);
        var delta = new double[d];
        for (var j = 0; j < experts.Count; j++)
        {
            var (a, bt) = bank.GetExpert(0, experts[j]);
            for (var r = 0; r < rank; r++)
            {
                double au = 0;
                for (var i = 0; i < d; i++) au += a[r * d + i] * u[i];
                for (var i = 0; i < d; i++) delta[i] += weights[j] * bt[r * d + i] * au;
            }
        }
        for (var i = 0; i < d; i++) delta[i] *= scale;
        return delta;
    }
}
