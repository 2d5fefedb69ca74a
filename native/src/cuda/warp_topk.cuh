// The best k <= 32 (score, index) pairs of a stream, held by one warp: lane j keeps the j-th
// best, so the list is sorted by construction (higher score first; equal scores: lower index
// first, as the CPU router orders them). A candidate enters with one ballot and one shuffle.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cmath>

namespace mome {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ bool better(float a, int ia, float b, int ib) { return a > b || (a == b && ia < ib); }

struct WarpTopK {
    float score = -INFINITY;
    int index = INT_MAX;

    // The k-th best so far (every lane gets it): a candidate must beat it to enter.
    __device__ __forceinline__ void threshold(int k, float& s, int& i) const {
        s = __shfl_sync(kFullMask, score, k - 1);
        i = __shfl_sync(kFullMask, index, k - 1);
    }

    // Inserts one candidate that every lane passes identically.
    __device__ __forceinline__ void insert(float s, int i, int k) {
        const int lane = threadIdx.x & 31;
        const unsigned ahead = __ballot_sync(kFullMask, lane < k && better(score, index, s, i));
        const int pos = __popc(ahead);
        const float up_s = __shfl_up_sync(kFullMask, score, 1);
        const int up_i = __shfl_up_sync(kFullMask, index, 1);
        if (pos >= k) return;
        if (lane > pos && lane < k) score = up_s, index = up_i;
        else if (lane == pos) score = s, index = i;
    }

    // Offers each lane's own candidate (s, i); only those beating the k-th best are inserted,
    // one after another.
    __device__ __forceinline__ void offer(float s, int i, int k) {
        float ts;
        int ti;
        threshold(k, ts, ti);
        unsigned pending = __ballot_sync(kFullMask, better(s, i, ts, ti));
        while (pending) {
            const int src = __ffs(pending) - 1;
            const float cs = __shfl_sync(kFullMask, s, src);
            const int ci = __shfl_sync(kFullMask, i, src);
            insert(cs, ci, k);
            threshold(k, ts, ti);
            pending &= ~(1u << src);
            pending &= __ballot_sync(kFullMask, better(s, i, ts, ti));
        }
    }
};

// Writes a warp's final list: indices, softmax(score * scale / temperature) weights, and the
// scaled scores (if wanted), for lanes 0..k-1.
__device__ __forceinline__ void write_route(const WarpTopK& list, int k, float scale, float temperature, int* indices, float* weights,
                                           float* scores) {
    const int lane = threadIdx.x & 31;
    const float s = list.score * scale;
    const float top = __shfl_sync(kFullMask, s, 0);
    float e = lane < k ? expf((s - top) / temperature) : 0.0f;
    float sum = e;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(kFullMask, sum, offset);
    if (lane < k) {
        indices[lane] = list.index;
        weights[lane] = e / sum;
        if (scores) scores[lane] = s;
    }
}

}  // namespace mome
