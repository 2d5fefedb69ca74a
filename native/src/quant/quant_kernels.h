// The fast quantized matmul over unpacked rows, written once in plain loops that the compiler
// vectorises (int8 products summed in int32) and compiled once per instruction set
// (quant_avx512.cpp, quant_avx2.cpp, quant_portable.cpp). Internal linkage only, so the
// per-ISA copies never meet at link time. The arithmetic is quant_dot_ref's: the same
// integers, then the same F32 scale products in block order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "mome.h"
#include "quant/quant.h"
#include "quant/quant_unpacked.h"

namespace {

inline int32_t int8_dot(const int8_t* a, const int8_t* b, int n) {
    int32_t s = 0;
    for (int l = 0; l < n; ++l) s += static_cast<int32_t>(a[l]) * static_cast<int32_t>(b[l]);
    return s;
}

// Lane sums in plain loops.
struct PlainLanes {
    static void lane_sums(const int8_t* w, const int8_t* a, int32_t out[8]) {
        for (int m = 0; m < 8; ++m) out[m] = int8_dot(w + 4 * m, a + 4 * m, 4);
    }
};

// ggml's 8 float lanes (see quant_dot_ref.cpp): lane m sums elements 4m..4m+3 of each run of 32.
struct Lanes {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    void add(float scale, const int32_t sums[8]) {
        for (int m = 0; m < 8; ++m) acc[m] = std::fma(scale, static_cast<float>(sums[m]), acc[m]);
    }
    float total() const {
        const float r0 = acc[0] + acc[4], r1 = acc[1] + acc[5], r2 = acc[2] + acc[6], r3 = acc[3] + acc[7];
        return (r0 + r2) + (r1 + r3);
    }
};

// Adds the lane sums of one run of 32, the first 16 elements (lanes 0..3) scaled by lo, the
// last 16 by hi. Isa::lane_sums(w, a, out) writes out[m] = sum of w[i] a[i] over i in 4m..4m+3.
template <class Isa>
inline void add_run(const int8_t* w, const int8_t* a, int32_t lo, int32_t hi, int32_t sums[8]) {
    int32_t lanes[8];
    Isa::lane_sums(w, a, lanes);
    for (int m = 0; m < 8; ++m) sums[m] += (m < 4 ? lo : hi) * lanes[m];
}

// Sum of w[i] a[i] over one run of 32.
template <class Isa>
inline int32_t run_dot(const int8_t* w, const int8_t* a) {
    int32_t lanes[8];
    Isa::lane_sums(w, a, lanes);
    int32_t s = 0;
    for (int32_t x : lanes) s += x;
    return s;
}

// Q4_K/Q5_K/Q6_K lanes of one super-block i: the lane sums of its 8 runs, each run's lanes
// 0..3 scaled by the weight's group 2 run, lanes 4..7 by group 2 run + 1.
template <class Isa>
inline void k_lanes(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t i, int32_t sums[8]) {
    for (int run = 0; run < 8; ++run) {
        const int64_t g = 16 * i + 2 * run;
        add_run<Isa>(w.q.data() + 256 * i + 32 * run, a.q.data() + 256 * i + 32 * run, w.group[g], w.group[g + 1], sums);
    }
}

// Q4_K/Q5_K: the integer minimum term of sub-blocks 2k and 2k + 1 of super-block i.
inline int32_t k_min_pair(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t i, int k) {
    int32_t min = 0;
    for (int64_t g = 16 * i + 4 * k; g < 16 * i + 4 * k + 4; ++g) min += w.group_min[g] * a.group[g];
    return min;
}

template <class Isa>
inline float unpacked_dot(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t n, mome::QuantKernel kernel) {
    const int8_t* wq = w.q.data();
    const int8_t* aq = a.q.data();
    const bool lanes_order = kernel == mome::QuantKernel::vec_dot;
    switch (w.type) {
    case MOME_TENSOR_TYPE_Q4_0:
    case MOME_TENSOR_TYPE_Q8_0:
    case MOME_TENSOR_TYPE_Q5_0:
    case MOME_TENSOR_TYPE_Q4_1:
    case MOME_TENSOR_TYPE_Q5_1: {
        if (!lanes_order) {  // repacked Q4_0: one FMA per block
            float sum = 0;
            for (int64_t i = 0; i < n / 32; ++i)
                sum = std::fma(w.scale[i] * a.scale[i], static_cast<float>(run_dot<Isa>(wq + 32 * i, aq + 32 * i)), sum);
            return sum;
        }
        Lanes lanes;
        float mins = 0;
        for (int64_t i = 0; i < n / 32; ++i) {
            if (w.has_min) mins = std::fma(w.extra[i], a.extra[i], mins);
            int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            add_run<Isa>(wq + 32 * i, aq + 32 * i, 1, 1, sums);
            lanes.add(w.scale[i] * a.scale[i], sums);
        }
        return w.has_min ? lanes.total() + mins : lanes.total();
    }
    case MOME_TENSOR_TYPE_Q6_K: {
        Lanes lanes;
        for (int64_t i = 0; i < n / 256; ++i) {
            int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            k_lanes<Isa>(w, a, i, sums);
            for (int m = 0; m < 8; ++m) {
                const int64_t g = 16 * i + 2 * m;
                sums[m] -= 32 * (w.group[g] * a.group[g] + w.group[g + 1] * a.group[g + 1]);
            }
            lanes.add(a.scale[i] * w.scale[i], sums);
        }
        return lanes.total();
    }
    default: break;
    }
    // Q4_K, Q5_K
    if (lanes_order) {
        Lanes lanes;
        float mins = 0, min_lanes[4] = {0, 0, 0, 0};
        for (int64_t i = 0; i < n / 256; ++i) {
            int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            k_lanes<Isa>(w, a, i, sums);
            const float dmin = -a.scale[i] * w.extra[i];
            if (w.type == MOME_TENSOR_TYPE_Q4_K) {
                for (int k = 0; k < 4; ++k) min_lanes[k] = std::fma(dmin, static_cast<float>(k_min_pair(w, a, i, k)), min_lanes[k]);
            } else {
                int32_t min = 0;
                for (int k = 0; k < 4; ++k) min += k_min_pair(w, a, i, k);
                mins = std::fma(dmin, static_cast<float>(min), mins);
            }
            lanes.add(a.scale[i] * w.scale[i], sums);
        }
        if (w.type == MOME_TENSOR_TYPE_Q4_K) return lanes.total() + ((min_lanes[0] + min_lanes[2]) + (min_lanes[1] + min_lanes[3]));
        return lanes.total() + mins;
    }
    // Repacked Q4_K: gemv one FMA per super-block, gemm one per pair of sub-blocks.
    float sum = 0, mins = 0;
    for (int64_t i = 0; i < n / 256; ++i) {
        const float d = w.scale[i] * a.scale[i], dmin = w.extra[i] * a.scale[i];
        int32_t dot = 0, min = 0;
        for (int k = 0; k < 4; ++k) {
            int32_t pair = 0;
            for (int run = 2 * k; run < 2 * k + 2; ++run)
                pair += w.group[16 * i + 2 * run] * run_dot<Isa>(wq + 256 * i + 32 * run, aq + 256 * i + 32 * run);
            const int32_t min_pair = k_min_pair(w, a, i, k);
            if (kernel == mome::QuantKernel::gemm) {
                sum = std::fma(d, static_cast<float>(pair), sum);
                mins = std::fma(dmin, static_cast<float>(min_pair), mins);
            } else {
                dot += pair;
                min += min_pair;
            }
        }
        if (kernel == mome::QuantKernel::gemv) {
            sum = std::fma(d, static_cast<float>(dot), sum);
            mins = std::fma(dmin, static_cast<float>(min), mins);
        }
    }
    return sum - mins;
}

struct PlainDot {
    static float dot(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t n, mome::QuantKernel kernel) {
        return unpacked_dot<PlainLanes>(w, a, n, kernel);
    }
    static bool reads_packed(uint32_t, mome::QuantKernel) { return false; }
    template <int NR>
    static void packed_dots(uint32_t, const uint8_t*, int64_t, const mome::UnpackedRow&, int64_t, float*) {}
};

constexpr size_t kPackedTokens = 4;                // up to this many tokens, Dot may read packed rows
constexpr int kPackedRows = 4;                     // rows per packed-row step
constexpr int64_t kQuantPrefetchBytes = 24 << 10;  // how far ahead a packed-row loop prefetches

// Rows [r0, r1) of Y ([n_tokens x rows]), token t summed in the order of kernels[t]: each
// weight row is unpacked once for all tokens, or, for a few tokens whose type and kernel Dot
// reads packed, used as it is stored. Dot::dot(w, a, n, kernel) is unpacked_dot (the portable
// build) or a SIMD version of it (quant_kernels_x86.h) that computes the same integers and
// the same floats.
template <class Dot>
inline void quant_rows_impl(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                            const std::vector<mome::UnpackedRow>& acts, const std::vector<mome::QuantKernel>& kernels,
                            float* Y, int64_t r0, int64_t r1) {
    const bool packed = acts.size() <= kPackedTokens &&
                        std::all_of(kernels.begin(), kernels.end(), [&](mome::QuantKernel k) { return Dot::reads_packed(type, k); });
    if (packed) {
        // Decode: stream the packed rows once, kPackedRows at a time (the last few one by
        // one), prefetching well ahead (rows are contiguous) but never past W's end.
        const uint8_t* end = W + rows * row_bytes;
        int64_t r = r0;
        const auto step = [&](auto nr) {
            const uint8_t* row = W + r * row_bytes;
            const int64_t bytes = nr.value * row_bytes;
            const uint8_t* ahead = std::min(row + kQuantPrefetchBytes, end - bytes);
            for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b);
            for (size_t t = 0; t < acts.size(); ++t) {
                float out[kPackedRows];
                Dot::template packed_dots<nr.value>(type, row, row_bytes, acts[t], cols, out);
                for (int i = 0; i < nr.value; ++i) Y[static_cast<int64_t>(t) * rows + r + i] = out[i];
            }
            r += nr.value;
        };
        while (r + kPackedRows <= r1) step(std::integral_constant<int, kPackedRows>{});
        while (r < r1) step(std::integral_constant<int, 1>{});
        return;
    }
    thread_local mome::UnpackedRow w;
    for (int64_t r = r0; r < r1; ++r) {
        mome::unpack_weight_row(type, W + r * row_bytes, cols, w);
        for (size_t t = 0; t < acts.size(); ++t) Y[static_cast<int64_t>(t) * rows + r] = Dot::dot(w, acts[t], cols, kernels[t]);
    }
}

}  // namespace
