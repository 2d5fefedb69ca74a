using ILGPU;
using Items = Mome.Ilgpu.Kernels.LlamaKernels.Items;

namespace Mome.Ilgpu.Kernels;

/// <summary>
/// The router's device side: the k best of each row of scores, in the native router's order
/// (higher score first; equal scores: lower index first), in two passes so that a row of a
/// million scores is not one thread's work: the k best of each chunk of a row, then per row a
/// merge of its chunks' lists in chunk order.
/// </summary>
internal static class RouterKernels
{
    /// <summary>
    /// Items are (row, chunk): the k best of columns [chunk * chunkLength, +chunkLength) of the
    /// row (at most <paramref name="count"/>), kept sorted by insertion while they are scanned in
    /// index order (so an equal score never displaces a lower index), into list row * chunks +
    /// chunk of <paramref name="bestScores"/>/<paramref name="bestIndices"/> (k entries each,
    /// <paramref name="filled"/> of them used). <paramref name="firstBad"/> of the list is its
    /// first column whose score is not finite, or -1.
    /// </summary>
    public static void TopKChunks(Index1D index, Items items, ArrayView<float> scores, int count, int k, int chunkLength, int chunks,
        ArrayView<float> bestScores, ArrayView<int> bestIndices, ArrayView<int> filled, ArrayView<int> firstBad)
    {
        for (int list = index; list < items.Count; list += items.Stride)
        {
            var row = list / chunks;
            var begin = list % chunks * chunkLength;
            var end = Math.Min(count, begin + chunkLength);
            var at = (long)list * k;
            var used = 0;
            firstBad[list] = -1;
            for (var i = begin; i < end; i++)
            {
                var s = scores[(long)row * count + i];
                if (float.IsNaN(s) || float.IsInfinity(s))
                {
                    if (firstBad[list] < 0) firstBad[list] = i;
                    continue;
                }
                used = Offer(bestScores, bestIndices, at, used, k, s, i);
            }
            filled[list] = used;
        }
    }

    /// <summary>
    /// Items are rows: the k best of the row's chunk lists (from <see cref="TopKChunks"/>), the
    /// lists taken in chunk order and each best first, so that an entry meets every equal score
    /// of a lower index before it; <paramref name="firstBad"/>[row] is the first bad column of
    /// the row's first chunk that has one, or -1.
    /// </summary>
    public static void MergeChunks(Index1D index, Items items, ArrayView<float> chunkScores, ArrayView<int> chunkIndices, ArrayView<int> chunkFilled,
        ArrayView<int> chunkBad, int chunks, int k, ArrayView<float> bestScores, ArrayView<int> bestIndices, ArrayView<int> firstBad)
    {
        for (int row = index; row < items.Count; row += items.Stride)
        {
            var at = (long)row * k;
            var used = 0;
            firstBad[row] = -1;
            for (var c = 0; c < chunks; c++)
            {
                var list = row * chunks + c;
                if (firstBad[row] < 0 && chunkBad[list] >= 0) firstBad[row] = chunkBad[list];
                for (var j = 0; j < chunkFilled[list]; j++)
                {
                    var s = chunkScores[(long)list * k + j];
                    // The list is best first: once one of its entries stays out, the rest do.
                    if (used == k && !(s > bestScores[at + k - 1])) break;
                    used = Offer(bestScores, bestIndices, at, used, k, s, chunkIndices[(long)list * k + j]);
                }
            }
        }
    }

    /// <summary>Inserts (s, i) into the best-first list of k at <paramref name="at"/> holding
    /// <paramref name="used"/> entries, below every equal score already there; the new count.</summary>
    private static int Offer(ArrayView<float> scores, ArrayView<int> indices, long at, int used, int k, float s, int i)
    {
        if (used == k && !(s > scores[at + k - 1])) return used;
        var j = used < k ? used++ : k - 1;
        for (; j > 0 && s > scores[at + j - 1]; j--)
        {
            scores[at + j] = scores[at + j - 1];
            indices[at + j] = indices[at + j - 1];
        }
        scores[at + j] = s;
        indices[at + j] = i;
        return used;
    }
}
