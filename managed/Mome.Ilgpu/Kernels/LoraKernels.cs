using ILGPU;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;

namespace Mome.Ilgpu.Kernels;

/// <summary>
/// Grouped LoRA (segmented gather, as Punica's SGMV): token t of segment s adds
/// scale * sum_j w[s][j] B_e (A_e u[t]), e = indices[s][j]. Tables are [experts x rank x dim]
/// (B stored transposed, as the native core stores it); segmentOf[t] names t's segment.
/// </summary>
internal static class LoraKernels
{
    /// <summary>z[t][j][rho] = (A_e u[t])[rho]. Items are (token, slot j, rank row rho).</summary>
    public static void Down(Index1D index, Items items, ArrayView<float> a, ArrayView<float> u, ArrayView<int> segmentOf,
        ArrayView<int> indices, ArrayView<float> z, int dim, int rank, int topK)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var rho = i % rank;
            var j = i / rank % topK;
            var t = i / rank / topK;
            var expert = indices[segmentOf[t] * topK + j];
            var row = ((long)expert * rank + rho) * dim;
            float sum = 0;
            for (var k = 0; k < dim; k++) sum += a[row + k] * u[(long)t * dim + k];
            z[i] = sum;
        }
    }

    /// <summary>output[t][f] += scale * sum_j w[s][j] sum_rho z[t][j][rho] B_e[rho][f]. Items are (token, feature).</summary>
    public static void Up(Index1D index, Items items, ArrayView<float> b, ArrayView<float> z, ArrayView<int> segmentOf,
        ArrayView<int> indices, ArrayView<float> weights, ArrayView<float> output, int dim, int rank, int topK, float scale)
    {
        for (int i = index; i < items.Count; i += items.Stride)
        {
            var f = i % dim;
            var t = i / dim;
            var s = segmentOf[t];
            float delta = 0;
            for (var j = 0; j < topK; j++)
            {
                var expert = indices[s * topK + j];
                float sum = 0;
                for (var rho = 0; rho < rank; rho++)
                    sum += z[((long)t * topK + j) * rank + rho] * b[((long)expert * rank + rho) * dim + f];
                delta += weights[s * topK + j] * scale * sum;
            }
            output[i] += delta;
        }
    }
}
