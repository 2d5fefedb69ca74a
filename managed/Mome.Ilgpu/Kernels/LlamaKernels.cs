using ILGPU;
using ILGPU.Algorithms;

namespace Mome.Ilgpu.Kernels;

/// <summary>
/// The frozen Llama layer's ops as ILGPU kernels (static methods: index first, then views).
/// Layouts as in the native core: row-major activations [token][feature], weights [out][in]
/// (a GGUF tensor's ne[0] is the input). The implicitly grouped kernels loop over their
/// <see cref="Items"/> with the stride of the whole launch (a grid-stride loop), so a launch
/// needs no more threads than the accelerator runs at once: ILGPU's CPU accelerator runs each
/// group's threads as OS threads that meet at every group, and many small groups cost far
/// more there than the arithmetic. The tiled matmul is explicitly grouped (GPUs).
/// </summary>
internal static class LlamaKernels
{
    /// <summary>What a grid-stride kernel covers: items 0..Count-1, Stride apart per thread (the launch's extent).</summary>
    public readonly struct Items(int count, int stride)
    {
        public readonly int Count = count;
        public readonly int Stride = stride;
    }

    /// <summary>Largest edge of the square tiles of <see cref="MatmulTiled"/>; a launch picks its
    /// edge (the group is edge x edge threads) to fit the accelerator's group size.</summary>
    public const int MaxTile = 16;

    /// <summary>x[t][k] = table[tokens[t]][k].</summary>
    public static void Embed(Index1D index, Items items, ArrayView<float> table, ArrayView<int> tokens, ArrayView<float> x, int d)
    {
        for (int i = index; i < items.Count; i += items.Stride) x[i] = table[(long)tokens[i / d] * d + i % d];
    }

    /// <summary>out[row] = x[row] / rms(x[row]) * weight, one row per step.</summary>
    public static void RmsNorm(Index1D index, Items items, ArrayView<float> x, ArrayView<float> weight, ArrayView<float> output, int d, float eps)
    {
        for (int row = index; row < items.Count; row += items.Stride)
        {
            var start = (long)row * d;
            float sumSquares = 0;
            for (var k = 0; k < d; k++) sumSquares += x[start + k] * x[start + k];
            var scale = 1.0f / XMath.Sqrt(sumSquares / d + eps);
            for (var k = 0; k < d; k++) output[start + k] = x[start + k] * scale * weight[k];
        }
    }

    /// <summary>Rounds activations to F16 values (nearest even; overflow to infinity, NaN stays
    /// NaN), as ggml does before a matmul with F16 weights; the result stays an F32.</summary>
    public static void RoundToF16(Index1D index, Items items, ArrayView<float> x, ArrayView<float> output)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var bits = ILGPU.Interop.FloatAsInt(x[i]);
            var sign = bits & 0x80000000u;
            var abs = bits & 0x7fffffffu;
            if (abs > 0x7f800000u) output[i] = x[i];
            else if (abs >= 0x477ff000u) output[i] = ILGPU.Interop.IntAsFloat(sign | 0x7f800000u);
            else if (abs < 0x38800000u)
            {
                // Below F16's normal range its step is 2^-24, the float step at 0.5: adding 0.5
                // rounds (nearest even) to that step, and subtracting it again is exact.
                var magnitude = ILGPU.Interop.IntAsFloat(abs) + 0.5f - 0.5f;
                output[i] = ILGPU.Interop.IntAsFloat(sign | ILGPU.Interop.FloatAsInt(magnitude));
            }
            else output[i] = ILGPU.Interop.IntAsFloat(sign | ((abs + 0xfffu + ((abs >> 13) & 1u)) & 0xffffe000u));
        }
    }

    /// <summary>Rounds activations to BF16 values (nearest even; NaN stays NaN), as ggml does for BF16 weights.</summary>
    public static void RoundToBF16(Index1D index, Items items, ArrayView<float> x, ArrayView<float> output)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var bits = ILGPU.Interop.FloatAsInt(x[i]);
            output[i] = (bits & 0x7fffffffu) > 0x7f800000u ? x[i] : ILGPU.Interop.IntAsFloat((bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u);
        }
    }

    /// <summary>y[t][r] = sum_k w[r][k] x[t][k], one output per step (the CPU accelerator's matmul).</summary>
    public static void Matmul(Index1D index, Items items, ArrayView<float> w, ArrayView<float> x, ArrayView<float> y, int rows, int cols)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var t = i / rows;
            var r = i % rows;
            float sum = 0;
            for (var k = 0; k < cols; k++) sum += w[(long)r * cols + k] * x[(long)t * cols + k];
            y[i] = sum;
        }
    }

    /// <summary>
    /// y[t][r] = sum_k w[r][k] x[t][k] for r &lt; rows, t &lt; n, k &lt; cols. Each group computes a
    /// square block of y (x: weight rows, y: tokens) whose edge is the group's, staging a tile of
    /// w and of x in shared memory per step along k.
    /// </summary>
    public static void MatmulTiled(ArrayView<float> w, ArrayView<float> x, ArrayView<float> y, int rows, int cols, int n)
    {
        var wTile = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        var xTile = SharedMemory.Allocate<float>(MaxTile * MaxTile);
        var tile = Group.DimX;
        int lr = Group.IdxX, lt = Group.IdxY;
        var r = Grid.IdxX * tile + lr;
        var t = Grid.IdxY * tile + lt;
        // The rows of w and x this thread stages: row lt of each tile.
        var wRow = Grid.IdxX * tile + lt;
        float sum = 0;
        for (var k0 = 0; k0 < cols; k0 += tile)
        {
            var k = k0 + lr;
            wTile[lt * tile + lr] = wRow < rows && k < cols ? w[(long)wRow * cols + k] : 0;
            xTile[lt * tile + lr] = t < n && k < cols ? x[(long)t * cols + k] : 0;
            Group.Barrier();
            for (var kk = 0; kk < tile; kk++) sum += wTile[lr * tile + kk] * xTile[lt * tile + kk];
            Group.Barrier();
        }
        if (r < rows && t < n) y[(long)t * rows + r] = sum;
    }

    /// <summary>RoPE, llama.cpp's NORM pairing: pairs (2i, 2i+1) of each head rotated by the
    /// angle of (token, i), whose cos and sin the host computed. Items are (token, head, pair).</summary>
    public static void Rope(Index1D index, Items items, ArrayView<float> v, ArrayView<float> cos, ArrayView<float> sin, int heads, int headDim,
        int pairs)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var pair = i % pairs;
            var head = i / pairs % heads;
            var t = i / pairs / heads;
            var at = (long)t * heads * headDim + (long)head * headDim + 2 * pair;
            float a = v[at], b = v[at + 1];
            float c = cos[(long)t * pairs + pair], s = sin[(long)t * pairs + pair];
            v[at] = a * c - b * s;
            v[at + 1] = a * s + b * c;
        }
    }

    /// <summary>Copies each token's keys and values into its sequence's slot of the cache.
    /// Items are (token, feature).</summary>
    public static void StoreKv(Index1D index, Items items, ArrayView<float> k, ArrayView<float> v, ArrayView<int> sequenceIds,
        ArrayView<int> positions, ArrayView<float> kCache, ArrayView<float> vCache, int kvDim, int contextLength)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var t = i / kvDim;
            var slot = ((long)sequenceIds[t] * contextLength + positions[t]) * kvDim + i % kvDim;
            kCache[slot] = k[i];
            vCache[slot] = v[i];
        }
    }

    /// <summary>Causal attention of one (token, query head) over positions 0..positions[t] of
    /// its sequence; query head h reads KV head h / (heads / kvHeads). Items are (token, head).</summary>
    public static void Attention(Index1D index, Items items, ArrayView<float> q, ArrayView<float> kCache, ArrayView<float> vCache,
        ArrayView<int> sequenceIds, ArrayView<int> positions, ArrayView<float> output, int heads, int kvHeads, int headDim,
        int contextLength)
    {
        var scale = 1.0f / XMath.Sqrt(headDim);
        var kvDim = kvHeads * headDim;
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var h = i % heads;
            var t = i / heads;
            var qAt = (long)t * heads * headDim + (long)h * headDim;
            var seqBase = (long)sequenceIds[t] * contextLength * kvDim + (long)(h / (heads / kvHeads)) * headDim;
            var visible = positions[t] + 1;
            var max = float.NegativeInfinity;
            for (var j = 0; j < visible; j++) max = XMath.Max(max, Dot(q, kCache, qAt, seqBase + (long)j * kvDim, headDim) * scale);
            for (var d = 0; d < headDim; d++) output[qAt + d] = 0;
            float total = 0;
            for (var j = 0; j < visible; j++)
            {
                var weight = XMath.Exp(Dot(q, kCache, qAt, seqBase + (long)j * kvDim, headDim) * scale - max);
                total += weight;
                var vAt = seqBase + (long)j * kvDim;
                for (var d = 0; d < headDim; d++) output[qAt + d] += weight * vCache[vAt + d];
            }
            for (var d = 0; d < headDim; d++) output[qAt + d] /= total;
        }
    }

    private static float Dot(ArrayView<float> a, ArrayView<float> b, long aAt, long bAt, int length)
    {
        float dot = 0;
        for (var d = 0; d < length; d++) dot += a[aAt + d] * b[bAt + d];
        return dot;
    }

    /// <summary>output = silu(gate) * up.</summary>
    public static void SwiGlu(Index1D index, Items items, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> output)
    {
        for (int i = index; i < items.Count; i += items.Stride) output[i] = gate[i] / (1.0f + XMath.Exp(-gate[i])) * up[i];
    }

    /// <summary>x += y.</summary>
    public static void Add(Index1D index, Items items, ArrayView<float> x, ArrayView<float> y)
    {
        for (int i = index; i < items.Count; i += items.Stride) x[i] += y[i];
    }

    /// <summary>output[j] = x[rows[j]] for rows of d features. Items are (picked row, feature).</summary>
    public static void GatherRows(Index1D index, Items items, ArrayView<float> x, ArrayView<int> rows, ArrayView<float> output, int d)
    {
        for (int i = index; i < items.Count; i += items.Stride) output[i] = x[(long)rows[i / d] * d + i % d];
    }
}
