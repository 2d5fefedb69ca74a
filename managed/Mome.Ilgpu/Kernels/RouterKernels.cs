using ILGPU;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;

namespace Mome.Ilgpu.Kernels;

/// <summary>The router's device side: the k best of each row of scores, in the native router's
/// order (higher score first; equal scores: lower index first).</summary>
internal static class RouterKernels
{
    /// <summary>
    /// For each of items.Count rows of <paramref name="count"/> scores: the best k scores and their
    /// column indices, best first, kept sorted by insertion while the row is scanned in index
    /// order (so an equal score never displaces a lower index). <paramref name="firstBad"/>[row]
    /// is the first column whose score is not finite, or -1.
    /// </summary>
    public static void TopKRows(Index1D index, Items items, ArrayView<float> scores, int count, int k, ArrayView<float> bestScores,
        ArrayView<int> bestIndices, ArrayView<int> firstBad)
    {
        for (int row = index; row < items.Count; row += items.Stride)
        {
            var at = (long)row * k;
            var filled = 0;
            firstBad[row] = -1;
            for (var i = 0; i < count; i++)
            {
                var s = scores[(long)row * count + i];
                if (float.IsNaN(s) || float.IsInfinity(s))
                {
                    if (firstBad[row] < 0) firstBad[row] = i;
                    continue;
                }
                if (filled == k && !(s > bestScores[at + k - 1])) continue;
                var j = filled < k ? filled++ : k - 1;
                for (; j > 0 && s > bestScores[at + j - 1]; j--)
                {
                    bestScores[at + j] = bestScores[at + j - 1];
                    bestIndices[at + j] = bestIndices[at + j - 1];
                }
                bestScores[at + j] = s;
                bestIndices[at + j] = i;
            }
        }
    }
}
