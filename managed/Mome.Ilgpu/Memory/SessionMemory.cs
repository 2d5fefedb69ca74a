using ILGPU;
using ILGPU.Runtime;
using Mome.Engines;
using Mome.Ilgpu.Routing;

namespace Mome.Ilgpu.Memory;

/// <summary>
/// The memory layers of an <see cref="IlgpuBank"/> inside an ILGPU session's forward pass, as the
/// native session runs them (session/session_memory.cpp): each batch's routes are made on the host
/// from the layer's normalised inputs u (per token; or per sequence from the mean u of its first
/// batch, kept until the sequence is emptied), through W_q (u - centre), the bank's router and
/// its locality gate; then x += (alpha / rank) * sum_j w_j B_j (A_j u) runs on the accelerator.
/// </summary>
internal sealed class SessionMemory
{
    private readonly IlgpuBank _bank;
    private readonly Accelerator _accelerator;
    private readonly int _dim;
    private Route?[,] _routes;

    internal sealed record Route(int[] Indices, float[] Weights);

    public SessionMemory(IlgpuBank bank, int maxSequences)
    {
        _bank = bank;
        _accelerator = bank.Model.Accelerator;
        _dim = (int)bank.Model.Config.EmbeddingLength;
        _routes = new Route?[maxSequences, bank.Layers.Count];
    }

    /// <summary>The memory-layer slot of a model block, or -1.</summary>
    public int SlotOf(int block)
    {
        for (var i = 0; i < _bank.Layers.Count; i++)
            if (_bank.Layers[i].Block == block) return i;
        return -1;
    }

    /// <summary>The sequence routes held now, to put back when a batch fails.</summary>
    public Route?[,] Snapshot() => (Route?[,])_routes.Clone();

    public void Restore(Route?[,] snapshot) => _routes = snapshot;

    /// <summary>An emptied sequence starts a new question: it is routed again.</summary>
    public void Forget(int sequence)
    {
        for (var slot = 0; slot < _bank.Layers.Count; slot++) _routes[sequence, slot] = null;
    }

    public void ForgetAll() => Array.Clear(_routes);

    /// <summary>x += the delta of memory layer <paramref name="slot"/> for a batch whose
    /// normalised inputs are <paramref name="u"/> ([n x n_embd] on the accelerator).</summary>
    public void AddDelta(int slot, MemoryBuffer1D<float, Stride1D.Dense> u, int[] sequenceIds, ArrayView<float> x)
    {
        var p = _bank.Options;
        var layer = _bank.Layers[slot];
        var n = sequenceIds.Length;
        var host = u.View.SubView(0, (long)n * _dim).GetAsArray1D();
        var (segmentOf, indices, weights) = p.Routing == RoutingMode.Token ? RouteTokens(slot, host, n) : RouteSequences(slot, host, sequenceIds);
        var segments = indices.Length / p.TopK;
        var offsets = new long[segments + 1];
        foreach (var s in segmentOf) offsets[s + 1]++;
        for (var s = 0; s < segments; s++) offsets[s + 1] += offsets[s];
        var tables = new LoraTables(p.WeightType, p.Experts, _dim, p.Rank, [], []);
        IlgpuLora.Check(tables, n, offsets, segments, indices, weights, p.TopK, p.Alpha / p.Rank);
        IlgpuLora.Run(_accelerator, layer.A.View, layer.B.View, u.View, n, _dim, p.Rank, segmentOf, indices, weights, p.TopK, p.Alpha / p.Rank, x);
    }

    private (int[] SegmentOf, int[] Indices, float[] Weights) RouteTokens(int slot, float[] u, int n)
    {
        var routed = RouteQueries(slot, Queries(slot, u, n));
        return (Enumerable.Range(0, n).ToArray(), routed.Indices, routed.Weights);
    }

    // One segment per sequence of the batch, in sequence-id order; a sequence's route is made
    // from the mean input of its rows in this batch the first time it is seen.
    private (int[] SegmentOf, int[] Indices, float[] Weights) RouteSequences(int slot, float[] u, int[] sequenceIds)
    {
        var k = _bank.Options.TopK;
        var segmentOf = new int[sequenceIds.Length];
        var indices = new List<int>();
        var weights = new List<float>();
        var segment = 0;
        foreach (var seq in sequenceIds.Distinct().Order())
        {
            var mean = new float[_dim];
            var count = 0;
            for (var t = 0; t < sequenceIds.Length; t++)
            {
                if (sequenceIds[t] != seq) continue;
                segmentOf[t] = segment;
                count++;
                for (var e = 0; e < _dim; e++) mean[e] += u[t * _dim + e];
            }
            if (_routes[seq, slot] is null)
            {
                for (var e = 0; e < _dim; e++) mean[e] /= count;
                var routed = RouteQueries(slot, Queries(slot, mean, 1));
                _routes[seq, slot] = new Route(routed.Indices, routed.Weights);
            }
            indices.AddRange(_routes[seq, slot]!.Indices);
            weights.AddRange(_routes[seq, slot]!.Weights);
            segment++;
        }
        if (indices.Count != segment * k) throw new InvalidOperationException("a route has the wrong length");
        return (segmentOf, [.. indices], [.. weights]);
    }

    /// <summary>Router queries W_q (u - centre) of <paramref name="n"/> inputs.</summary>
    private float[] Queries(int slot, float[] u, int n)
    {
        var layer = _bank.Layers[slot];
        var keyDim = layer.KeyDim;
        var q = new float[n * keyDim];
        var centred = new float[_dim];
        for (var t = 0; t < n; t++)
        {
            for (var e = 0; e < _dim; e++) centred[e] = u[t * _dim + e] - layer.Centre[e];
            for (var i = 0; i < keyDim; i++)
            {
                float sum = 0;
                for (var e = 0; e < _dim; e++) sum += layer.Wq[i * _dim + e] * centred[e];
                q[t * keyDim + i] = sum;
            }
        }
        return q;
    }

    /// <summary>The bank's top-k and weights for each query, the weights zeroed where the gate finds too little evidence.</summary>
    private (int[] Indices, float[] Weights) RouteQueries(int slot, float[] queries)
    {
        var p = _bank.Options;
        var layer = _bank.Layers[slot];
        RoutingResult routed;
        try
        {
            routed = IlgpuRouter.Route(layer.Router, queries);
        }
        catch (MomeException e)
        {
            throw new MomeException(e.Code, "memory layer routing: " + e.Message);
        }
        if (layer.GateThreshold > -1f)
        {
            var evidence = GateEvidence(layer, queries);
            for (var t = 0; t < evidence.Length; t++)
                if (!(evidence[t] >= layer.GateThreshold)) Array.Clear(routed.Weights, t * p.TopK, p.TopK);
        }
        return (routed.Indices, routed.Weights);
    }

    /// <summary>Each query's largest cosine with a signature (memory/gate.cpp): -1 for a zero
    /// query or a layer without signatures.</summary>
    private float[] GateEvidence(IlgpuMemoryTables layer, float[] queries)
    {
        var d = layer.KeyDim;
        var n = queries.Length / d;
        var unit = new float[queries.Length];
        var zero = new bool[n];
        for (var t = 0; t < n; t++)
        {
            double norm = 0;
            for (var i = 0; i < d; i++) norm += (double)queries[t * d + i] * queries[t * d + i];
            zero[t] = !(norm > 0);
            if (zero[t]) continue;
            var inv = 1.0 / Math.Sqrt(norm);
            for (var i = 0; i < d; i++) unit[t * d + i] = (float)(queries[t * d + i] * inv);
        }
        var evidence = Enumerable.Repeat(-1f, n).ToArray();
        if (layer.GateKeys is null) return evidence;
        RoutingResult nearest;
        try
        {
            nearest = IlgpuRouter.Route(layer.GateKeys, unit);
        }
        catch (MomeException e)
        {
            throw new MomeException(e.Code, "memory gate: " + e.Message);
        }
        for (var t = 0; t < n; t++)
            if (!zero[t]) evidence[t] = nearest.Scores[t] * MathF.Sqrt(d);
        return evidence;
    }
}
