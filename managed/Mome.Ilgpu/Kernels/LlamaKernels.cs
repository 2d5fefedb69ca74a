using ILGPU;
using ILGPU.Algorithms;

namespace Mome.Ilgpu.Kernels;

/// <summary>
/// The frozen Llama layer's ops as ILGPU kernels (static methods: index first, then views;
/// the tiled matmul is explicitly grouped). Layouts as in the native core: row-major
/// activations [token][feature], weights [out][in] (a GGUF tensor's ne[0] is the input).
/// </summary>
internal static class LlamaKernels
{
    /// <summary>Edge of the square tiles of <see cref="MatmulTiled"/> (a group is Tile x Tile threads).</summary>
    public const int Tile = 8;

    /// <summary>x[t][k] = table[tokens[t]][k].</summary>
    public static void Embed(Index1D index, ArrayView<float> table, ArrayView<int> tokens, ArrayView<float> x, int d)
    {
        int i = index;
        var t = i / d;
        x[i] = table[(long)tokens[t] * d + i % d];
    }

    /// <summary>out[row] = x[row] / rms(x[row]) * weight, one thread per row.</summary>
    public static void RmsNorm(Index1D row, ArrayView<float> x, ArrayView<float> weight, ArrayView<float> output, int d, float eps)
    {
        var start = (long)(int)row * d;
        float sumSquares = 0;
        for (var k = 0; k < d; k++) sumSquares += x[start + k] * x[start + k];
        var scale = 1.0f / XMath.Sqrt(sumSquares / d + eps);
        for (var k = 0; k < d; k++) output[start + k] = x[start + k] * scale * weight[k];
    }

    /// <summary>Rounds activations to F16, as ggml does before a matmul with F16 weights.</summary>
    public static void RoundToF16(Index1D i, ArrayView<float> x, ArrayView<float> output) => output[i] = (float)(ILGPU.Half)x[i];

    /// <summary>Rounds activations to BF16 (nearest even; NaN stays NaN), as ggml does for BF16 weights.</summary>
    public static void RoundToBF16(Index1D index, ArrayView<float> x, ArrayView<float> output)
    {
        int i = index;
        var bits = ILGPU.Interop.FloatAsInt(x[i]);
        if ((bits & 0x7fffffffu) > 0x7f800000u)
        {
            output[i] = x[i];
            return;
        }
        bits += 0x7fffu + ((bits >> 16) & 1u);
        output[i] = ILGPU.Interop.IntAsFloat(bits & 0xffff0000u);
    }

    /// <summary>
    /// y[t][r] = sum_k w[r][k] x[t][k] for r &lt; rows, t &lt; n, k &lt; cols. Each group computes a
    /// Tile x Tile block of y (x: weight rows, y: tokens), staging a tile of w and of x in
    /// shared memory per step along k.
    /// </summary>
    public static void MatmulTiled(ArrayView<float> w, ArrayView<float> x, ArrayView<float> y, int rows, int cols, int n)
    {
        var wTile = SharedMemory.Allocate<float>(Tile * Tile);
        var xTile = SharedMemory.Allocate<float>(Tile * Tile);
        int lr = Group.IdxX, lt = Group.IdxY;
        var r = Grid.IdxX * Tile + lr;
        var t = Grid.IdxY * Tile + lt;
        // Rows of w and x this thread stages: the group's row lt of each tile.
        var wRow = Grid.IdxX * Tile + lt;
        float sum = 0;
        for (var k0 = 0; k0 < cols; k0 += Tile)
        {
            var k = k0 + lr;
            wTile[lt * Tile + lr] = wRow < rows && k < cols ? w[(long)wRow * cols + k] : 0;
            xTile[lt * Tile + lr] = t < n && k < cols ? x[(long)t * cols + k] : 0;
            Group.Barrier();
            for (var kk = 0; kk < Tile; kk++) sum += wTile[lr * Tile + kk] * xTile[lt * Tile + kk];
            Group.Barrier();
        }
        if (r < rows && t < n) y[(long)t * rows + r] = sum;
    }

    /// <summary>RoPE, llama.cpp's NORM pairing: pairs (2i, 2i+1) of each head rotated by the
    /// angle of (token, i), whose cos and sin the host computed. Index over (token, head, pair).</summary>
    public static void Rope(Index1D index, ArrayView<float> v, ArrayView<float> cos, ArrayView<float> sin, int heads, int headDim, int pairs)
    {
        int i = index;
        var pair = i % pairs;
        var head = i / pairs % heads;
        var t = i / pairs / heads;
        var at = (long)t * heads * headDim + (long)head * headDim + 2 * pair;
        float a = v[at], b = v[at + 1];
        float c = cos[(long)t * pairs + pair], s = sin[(long)t * pairs + pair];
        v[at] = a * c - b * s;
        v[at + 1] = a * s + b * c;
    }

    /// <summary>Copies each token's keys and values into its sequence's slot of the cache.
    /// Index over (token, feature).</summary>
    public static void StoreKv(Index1D index, ArrayView<float> k, ArrayView<float> v, ArrayView<int> sequenceIds, ArrayView<int> positions,
        ArrayView<float> kCache, ArrayView<float> vCache, int kvDim, int contextLength)
    {
        int i = index;
        var t = i / kvDim;
        var slot = ((long)sequenceIds[t] * contextLength + positions[t]) * kvDim + i % kvDim;
        kCache[slot] = k[i];
        vCache[slot] = v[i];
    }

    /// <summary>Causal attention of one (token, query head) over positions 0..positions[t] of
    /// its sequence; query head h reads KV head h / (heads / kvHeads). Index over (token, head).</summary>
    public static void Attention(Index1D index, ArrayView<float> q, ArrayView<float> kCache, ArrayView<float> vCache,
        ArrayView<int> sequenceIds, ArrayView<int> positions, ArrayView<float> output, int heads, int kvHeads, int headDim,
        int contextLength, float scale)
    {
        int i = index;
        var h = i % heads;
        var t = i / heads;
        var kvDim = kvHeads * headDim;
        var kvHead = h / (heads / kvHeads);
        var qAt = (long)t * heads * headDim + (long)h * headDim;
        var seqBase = (long)sequenceIds[t] * contextLength * kvDim + (long)kvHead * headDim;
        var visible = positions[t] + 1;
        var max = float.NegativeInfinity;
        for (var j = 0; j < visible; j++) max = XMath.Max(max, Score(q, kCache, qAt, seqBase + (long)j * kvDim, headDim) * scale);
        for (var d = 0; d < headDim; d++) output[qAt + d] = 0;
        float total = 0;
        for (var j = 0; j < visible; j++)
        {
            var weight = XMath.Exp(Score(q, kCache, qAt, seqBase + (long)j * kvDim, headDim) * scale - max);
            total += weight;
            var vAt = seqBase + (long)j * kvDim;
            for (var d = 0; d < headDim; d++) output[qAt + d] += weight * vCache[vAt + d];
        }
        for (var d = 0; d < headDim; d++) output[qAt + d] /= total;
    }

    private static float Score(ArrayView<float> q, ArrayView<float> kCache, long qAt, long kAt, int headDim)
    {
        float dot = 0;
        for (var d = 0; d < headDim; d++) dot += q[qAt + d] * kCache[kAt + d];
        return dot;
    }

    /// <summary>output = silu(gate) * up.</summary>
    public static void SwiGlu(Index1D i, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> output) =>
        output[i] = gate[i] / (1.0f + XMath.Exp(-gate[i])) * up[i];

    /// <summary>x += y.</summary>
    public static void Add(Index1D i, ArrayView<float> x, ArrayView<float> y) => x[i] += y[i];

    /// <summary>output[j] = x[rows[j]] for rows of d features. Index over (picked row, feature).</summary>
    public static void GatherRows(Index1D i, ArrayView<float> x, ArrayView<int> rows, ArrayView<float> output, int d) =>
        output[i] = x[(long)rows[i / d] * d + i % d];
}
