namespace Mome.Cli.Versus;

/// <summary>
/// Floating-point operations of training, counted from the shapes (a multiply-add is 2).
/// A block's forward over a sequence of n tokens: 2 n P (P: its projection weights) plus
/// attention 4 q_dim (1 + 2 + ... + n); its backward: the same for the input gradients, twice
/// the attention, and 2 n P more when the weights themselves are trained. The loss head costs
/// 2 n_embd n_vocab per answer token forward, as much again backward, and again for its weight.
/// A LoRA adapter of rank r beside W [out x in]: 2 r (in + out) per token forward, twice that
/// backward plus 2 r in to recompute A x. Memory experts: top_k experts of rank r per token,
/// each 2 r (2 n_embd) forward and twice that backward, and the route (W_q and the keys) once
/// per fact. Norms, RoPE, softmax and the optimiser are left out (linear in the parameters or
/// tokens, negligible beside the matmuls).
/// </summary>
public sealed class TrainingFlops(ModelConfig config)
{
    private readonly double _d = config.EmbeddingLength;
    private readonly double _q = config.HeadCount * config.HeadDim;
    private readonly double _kv = config.KvHeadCount * config.HeadDim;
    private readonly double _ff = config.FeedForwardLength;
    private readonly double _vocab = config.VocabSize;

    /// <summary>Projection weights of one block: q, k, v, o, gate, up, down.</summary>
    public double BlockProjectionWeights => _d * _q + 2 * _d * _kv + _q * _d + 3 * _d * _ff;

    /// <summary>The (in, out) of the block's seven projections, in the order q, k, v, o, gate, up, down.</summary>
    public IReadOnlyList<(double In, double Out)> Projections =>
        [(_d, _q), (_d, _kv), (_d, _kv), (_q, _d), (_d, _ff), (_d, _ff), (_ff, _d)];

    private double Attention(int n) => 4 * _q * n * (n + 1) / 2.0;

    public double BlocksForward(int n, int blocks) => blocks * (2 * n * BlockProjectionWeights + Attention(n));

    public double BlocksBackward(int n, int blocks, bool weights) =>
        blocks * (2 * n * BlockProjectionWeights + 2 * Attention(n) + (weights ? 2 * n * BlockProjectionWeights : 0));

    public double HeadForward(int answers) => 2.0 * answers * _d * _vocab;

    public double HeadBackward(int answers, bool weights) => (weights ? 2 : 1) * 2.0 * answers * _d * _vocab;

    public double AdaptersForward(int n, int rank, int blocks) => blocks * Projections.Sum(p => 2.0 * n * rank * (p.In + p.Out));

    public double AdaptersBackward(int n, int rank, int blocks) =>
        blocks * Projections.Sum(p => 2 * 2.0 * n * rank * (p.In + p.Out) + 2.0 * n * rank * p.In);

    public double ExpertsForward(int n, int topK, int rank) => 2.0 * n * topK * rank * 2 * _d;

    public double ExpertsBackward(int n, int topK, int rank) => 2 * ExpertsForward(n, topK, rank);

    /// <summary>W_q, then the scores against every key (product keys: two sub-key tables of
    /// sqrt(experts) keys of key_dim / 2 each).</summary>
    public double Route(long experts, long keyDim, bool productKeys) =>
        2 * _d * keyDim + (productKeys ? 2.0 * Math.Sqrt(experts) * keyDim : 2.0 * experts * keyDim);
}
