namespace Mome;

/// <summary>
/// Whitening of a memory layer's routing queries over a set of facts. Questions of one
/// template share most of their memory-layer input, so after centring the differences between
/// templates dominate the query and the questions of a template pick almost the same experts
/// (on the `mini` preset, 300 questions "vault N" had a nearest neighbour sharing >= 80% of its
/// 32 experts for 180 of them). Folding the inverse square root of the questions' covariance
/// into W_q (W_q L^-1 with L L^T = covariance + ridge) gives every direction along which the
/// questions vary the same weight, so questions that differ in one entity reach different
/// experts, and the gate's evidence separates them (bench/RESULTS.md).
/// </summary>
public static class RoutingWhitening
{
    /// <summary>W_q ([keyDim x dim], row-major) times the whitening of the centred inputs
    /// (<paramref name="centred"/>: one row of <paramref name="dim"/> values each), rescaled so
    /// that the mean squared query length over the inputs is what it was (the routing softmax
    /// keeps its sharpness). The ridge is relative to the mean variance per dimension.</summary>
    public static float[] Whiten(float[] wq, int keyDim, int dim, IReadOnlyList<double[]> centred, double ridge)
    {
        ArgumentNullException.ThrowIfNull(wq);
        ArgumentNullException.ThrowIfNull(centred);
        if (wq.Length != keyDim * dim) throw new ArgumentException($"W_q must hold {keyDim} x {dim} values", nameof(wq));
        if (centred.Count == 0 || !(ridge > 0)) return wq;
        var covariance = Covariance(centred, dim, ridge);
        var lower = Cholesky(covariance, dim);
        // Each row y of the new W_q solves y L = w, so y x = w (L^-1 x): the whitened input.
        var whitened = new double[keyDim * dim];
        for (var r = 0; r < keyDim; r++)
        {
            var row = whitened.AsSpan(r * dim, dim);
            for (var j = dim - 1; j >= 0; j--)
            {
                double s = wq[r * dim + j];
                for (var k = j + 1; k < dim; k++) s -= row[k] * lower[k * dim + j];
                row[j] = s / lower[j * dim + j];
            }
        }
        var scale = Math.Sqrt(MeanSquaredQuery(wq.Select(v => (double)v).ToArray(), keyDim, dim, centred) /
                              MeanSquaredQuery(whitened, keyDim, dim, centred));
        return whitened.Select(v => (float)(v * scale)).ToArray();
    }

    private static double[] Covariance(IReadOnlyList<double[]> rows, int dim, double ridge)
    {
        var c = new double[dim * dim];
        foreach (var x in rows)
            for (var i = 0; i < dim; i++)
            {
                var xi = x[i] / rows.Count;
                for (var j = 0; j <= i; j++) c[i * dim + j] += xi * x[j];
            }
        var trace = 0.0;
        for (var i = 0; i < dim; i++) trace += c[i * dim + i];
        var lambda = ridge * Math.Max(trace / dim, 1e-30);
        for (var i = 0; i < dim; i++) c[i * dim + i] += lambda;
        return c;
    }

    // The lower-triangular L with L L^T = a (a symmetric positive definite, lower half used).
    private static double[] Cholesky(double[] a, int dim)
    {
        var l = new double[dim * dim];
        for (var i = 0; i < dim; i++)
            for (var j = 0; j <= i; j++)
            {
                var s = a[i * dim + j];
                for (var k = 0; k < j; k++) s -= l[i * dim + k] * l[j * dim + k];
                l[i * dim + j] = i == j ? Math.Sqrt(Math.Max(s, 1e-300)) : s / l[j * dim + j];
            }
        return l;
    }

    private static double MeanSquaredQuery(double[] w, int keyDim, int dim, IReadOnlyList<double[]> rows)
    {
        var total = 0.0;
        foreach (var x in rows)
            for (var r = 0; r < keyDim; r++)
            {
                var q = 0.0;
                for (var i = 0; i < dim; i++) q += w[r * dim + i] * x[i];
                total += q * q;
            }
        return total / rows.Count;
    }
}
