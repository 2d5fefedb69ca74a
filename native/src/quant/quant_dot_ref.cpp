// The readable reference of the quantized dot products, one function per weight type. The
// integers are exact; the floats are summed in the order of the llama.cpp x86 kernel (AVX2 and
// up) that computes the same output (QuantKernel, quant.h), because a last-bit difference in
// one output can move a value across a rounding step when the next layer quantizes it, and
// then the logits part visibly. Three orders occur:
//  - lanes (vec_dot: Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K, Q6_K): 8 float lanes; lane m
//    takes, from every run of 32 consecutive elements, the exact integer sum over elements
//    4m..4m+3 (times their sub-block scales), multiplied by the block's scale product and
//    added with one FMA per block; at the end the lanes are added as (m, m + 4) pairs, then
//    (0 + 2) + (1 + 3) (ggml's hsum_float_8). Q6_K's lanes take the quants without their
//    offset 32 and subtract it per lane from the activation sums (see dot_q6_k); Q4_K keeps
//    its minima in 4 lanes of their own;
//  - blocks (gemv: Q4_0, Q4_K; gemm: Q4_0): one FMA per block, block order;
//  - pairs (gemm: Q4_K): one FMA per 64 elements (two sub-blocks), in order.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"

namespace mome {

namespace {

struct Lanes {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};

    // Adds scale * lane sums of one block (or super-block).
    void add(float scale, const int32_t sums[8]) {
        for (int m = 0; m < 8; ++m) acc[m] = std::fma(scale, static_cast<float>(sums[m]), acc[m]);
    }

    float total() const {
        const float r0 = acc[0] + acc[4], r1 = acc[1] + acc[5], r2 = acc[2] + acc[6], r3 = acc[3] + acc[7];
        return (r0 + r2) + (r1 + r3);
    }
};

// Lane sums of one run of 32 elements: weights q (as ints), activations a, the first 16
// elements scaled by scale_lo, the last 16 by scale_hi.
void add_run(const int* q, const int8_t* a, int scale_lo, int scale_hi, int32_t sums[8]) {
    for (int m = 0; m < 8; ++m) {
        int32_t s = 0;
        for (int i = 4 * m; i < 4 * m + 4; ++i) s += q[i] * a[i];
        sums[m] += (m < 4 ? scale_lo : scale_hi) * s;
    }
}

uint32_t high_bits(const uint8_t qh[4]) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}

// Element order of the legacy types: j < 16 the low nibble of qs[j], j >= 16 the high nibble
// of qs[j - 16]; Q5 types add bit j of qh as bit 4.
void legacy_values(const uint8_t* qs, const uint8_t* qh, int offset, int q[kQK]) {
    const uint32_t h = qh ? high_bits(qh) : 0;
    for (int j = 0; j < kQK; ++j) {
        const int nibble = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
        q[j] = (nibble | static_cast<int>(((h >> j) & 1) << 4)) - offset;
    }
}

// Q4_0: lanes (as dot_scaled) unless repacked, then one FMA per block (gemv and gemm alike).
float dot_q4_0_blocks(const BlockQ4_0* x, const BlockQ8_0* y, int64_t nb) {
    float sum = 0;
    int q[kQK];
    for (int64_t i = 0; i < nb; ++i) {
        legacy_values(x[i].qs, nullptr, 8, q);
        int sumi = 0;
        for (int j = 0; j < kQK; ++j) sumi += q[j] * y[i].qs[j];
        sum = std::fma(f16_to_float(x[i].d) * f16_to_float(y[i].d), static_cast<float>(sumi), sum);
    }
    return sum;
}

// Q4_0, Q5_0 and Q8_0 against Q8_0: sum_j (d q_j) (d' q'_j) = d d' sum q q'.
template <class Block>
float dot_scaled(const Block* x, const BlockQ8_0* y, int64_t nb) {
    Lanes lanes;
    int q[kQK];
    for (int64_t i = 0; i < nb; ++i) {
        if constexpr (std::is_same_v<Block, BlockQ8_0>)
            for (int j = 0; j < kQK; ++j) q[j] = x[i].qs[j];
        else if constexpr (std::is_same_v<Block, BlockQ4_0>)
            legacy_values(x[i].qs, nullptr, 8, q);
        else
            legacy_values(x[i].qs, x[i].qh, 16, q);
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        add_run(q, y[i].qs, 1, 1, sums);
        lanes.add(f16_to_float(x[i].d) * f16_to_float(y[i].d), sums);
    }
    return lanes.total();
}

// Q4_1 and Q5_1 against Q8_1: sum_j (d q_j + m) (d' q'_j) = d d' sum q q' + m s, where the
// activation block's s is d' sum q'.
template <class Block>
float dot_with_min(const Block* x, const BlockQ8_1* y, int64_t nb) {
    Lanes lanes;
    float mins = 0;
    int q[kQK];
    for (int64_t i = 0; i < nb; ++i) {
        if constexpr (std::is_same_v<Block, BlockQ5_1>) legacy_values(x[i].qs, x[i].qh, 0, q);
        else legacy_values(x[i].qs, nullptr, 0, q);
        mins = std::fma(f16_to_float(x[i].m), f16_to_float(y[i].s), mins);
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        add_run(q, y[i].qs, 1, 1, sums);
        lanes.add(f16_to_float(x[i].d) * f16_to_float(y[i].d), sums);
    }
    return lanes.total() + mins;
}

// Q4_K/Q5_K super-block values in element order: 64-element chunk c holds the low nibbles of
// qs[32c .. 32c + 32) then their high nibbles; Q5_K's fifth bit of element l of the two runs
// is bit 2c resp. 2c + 1 of qh[l].
void k4_values(const uint8_t* qs, const uint8_t* qh, int q[kQK_K]) {
    for (int c = 0; c < 4; ++c)
        for (int l = 0; l < 32; ++l) {
            q[64 * c + l] = qs[32 * c + l] & 0xF;
            q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
            if (qh) {
                q[64 * c + l] |= ((qh[l] >> (2 * c)) & 1) << 4;
                q[64 * c + 32 + l] |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
            }
        }
}

// sum_j (d sc_j q - dmin m_j) . (d' q') over sub-blocks j of 32
//   = d d' sum_j sc_j (q . q')_j  -  dmin d' sum_j m_j (sum of q' over j), the sums of q'
// coming from Q8_K's bsums (two per sub-block). Writes the lane sums of the first term and
// the integer minimum terms of pairs of sub-blocks (4 of them).
void k4_superblock(const uint8_t* scales, const int* q, const BlockQ8_K& y, int32_t sums[8], int32_t min_pairs[4]) {
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) k_scale_min(j, scales, &sc[j], &m[j]);
    for (int j = 0; j < 8; ++j) add_run(q + 32 * j, y.qs + 32 * j, sc[j], sc[j], sums);
    for (int k = 0; k < 4; ++k)
        min_pairs[k] = m[2 * k] * (y.bsums[4 * k] + y.bsums[4 * k + 1]) + m[2 * k + 1] * (y.bsums[4 * k + 2] + y.bsums[4 * k + 3]);
}

// Q4_K, gemv: one FMA per super-block for the scaled sums and one for the minima.
float dot_q4_k_blocks(const BlockQ4_K* x, const BlockQ8_K* y, int64_t nb) {
    float sum = 0, mins = 0;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        k4_values(x[i].qs, nullptr, q);
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0}, min_pairs[4];
        k4_superblock(x[i].scales, q, y[i], sums, min_pairs);
        int32_t dot = 0, min = 0;
        for (int m = 0; m < 8; ++m) dot += sums[m];
        for (int k = 0; k < 4; ++k) min += min_pairs[k];
        sum = std::fma(f16_to_float(x[i].d) * y[i].d, static_cast<float>(dot), sum);
        mins = std::fma(f16_to_float(x[i].dmin) * y[i].d, static_cast<float>(min), mins);
    }
    return sum - mins;
}

// Q4_K, gemm: per super-block, for each pair of sub-blocks (64 elements) one FMA of its
// scaled integer dot and one of its minimum term.
float dot_q4_k_pairs(const BlockQ4_K* x, const BlockQ8_K* y, int64_t nb) {
    float sum = 0, mins = 0;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        k4_values(x[i].qs, nullptr, q);
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) k_scale_min(j, x[i].scales, &sc[j], &m[j]);
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0}, min_pairs[4];
        k4_superblock(x[i].scales, q, y[i], sums, min_pairs);
        for (int k = 0; k < 4; ++k) {
            int32_t dot = 0;
            for (int j = 2 * k; j < 2 * k + 2; ++j) {
                int32_t sub = 0;
                for (int l = 32 * j; l < 32 * j + 32; ++l) sub += q[l] * y[i].qs[l];
                dot += sc[j] * sub;
            }
            sum = std::fma(f16_to_float(x[i].d) * y[i].d, static_cast<float>(dot), sum);
            mins = std::fma(f16_to_float(x[i].dmin) * y[i].d, static_cast<float>(min_pairs[k]), mins);
        }
    }
    return sum - mins;
}

// Q4_K, vec_dot: the scaled sums in 8 lanes as Q5_K, the minima in 4 lanes (one per pair of
// sub-blocks), added as (0 + 2) + (1 + 3) and then to the lanes' total.
float dot_q4_k_lanes(const BlockQ4_K* x, const BlockQ8_K* y, int64_t nb) {
    Lanes lanes;
    float mins[4] = {0, 0, 0, 0};
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        k4_values(x[i].qs, nullptr, q);
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0}, min_pairs[4];
        k4_superblock(x[i].scales, q, y[i], sums, min_pairs);
        const float dmin = -y[i].d * f16_to_float(x[i].dmin);
        for (int k = 0; k < 4; ++k) mins[k] = std::fma(dmin, static_cast<float>(min_pairs[k]), mins[k]);
        lanes.add(y[i].d * f16_to_float(x[i].d), sums);
    }
    return lanes.total() + ((mins[0] + mins[2]) + (mins[1] + mins[3]));
}

float dot_q5_k(const BlockQ5_K* x, const BlockQ8_K* y, int64_t nb) {
    Lanes lanes;
    float mins = 0;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        k4_values(x[i].qs, x[i].qh, q);
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0}, min_pairs[4];
        k4_superblock(x[i].scales, q, y[i], sums, min_pairs);
        const float dmin = -y[i].d * f16_to_float(x[i].dmin);
        mins = std::fma(dmin, static_cast<float>(min_pairs[0] + min_pairs[1] + min_pairs[2] + min_pairs[3]), mins);
        lanes.add(y[i].d * f16_to_float(x[i].d), sums);
    }
    return lanes.total() + mins;
}

// Q6_K: d d' sum_j sc_j (q - 32) . q' over sub-blocks j of 16. The lanes take the quants q
// in 0..63 as they are; lane m then subtracts 32 (sc_{2m} bsum_{2m} + sc_{2m+1} bsum_{2m+1}),
// the offset's share of the 32 activations of groups 2m and 2m + 1 (not the elements the lane
// summed: only the lanes' total is the same, and that is why the order is spelled out here).
float dot_q6_k(const BlockQ6_K* x, const BlockQ8_K* y, int64_t nb) {
    Lanes lanes;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        for (int half = 0; half < 2; ++half)
            for (int l = 0; l < 32; ++l) {
                const uint8_t* ql = x[i].ql + 64 * half;
                const uint8_t qh = x[i].qh[32 * half + l];
                int* out = q + 128 * half;
                out[l] = (ql[l] & 0xF) | (((qh >> 0) & 3) << 4);
                out[l + 32] = (ql[l + 32] & 0xF) | (((qh >> 2) & 3) << 4);
                out[l + 64] = (ql[l] >> 4) | (((qh >> 4) & 3) << 4);
                out[l + 96] = (ql[l + 32] >> 4) | (((qh >> 6) & 3) << 4);
            }
        const int8_t* sc = x[i].scales;
        int32_t sums[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int run = 0; run < 8; ++run) add_run(q + 32 * run, y[i].qs + 32 * run, sc[2 * run], sc[2 * run + 1], sums);
        for (int m = 0; m < 8; ++m) sums[m] -= 32 * (sc[2 * m] * y[i].bsums[2 * m] + sc[2 * m + 1] * y[i].bsums[2 * m + 1]);
        lanes.add(y[i].d * f16_to_float(x[i].d), sums);
    }
    return lanes.total();
}

template <class W, class A>
float typed(float (*dot)(const W*, const A*, int64_t), const uint8_t* w, const uint8_t* act, int64_t nb) {
    return dot(reinterpret_cast<const W*>(w), reinterpret_cast<const A*>(act), nb);
}

}  // namespace

float quant_dot_ref(uint32_t weight_type, QuantKernel kernel, const uint8_t* w, const uint8_t* act, int64_t n) {
    quant_row_bytes(weight_type, n);
    const bool lanes = kernel == QuantKernel::vec_dot;
    switch (weight_type) {
    case MOME_TENSOR_TYPE_Q4_0: return typed(lanes ? dot_scaled<BlockQ4_0> : dot_q4_0_blocks, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q4_1: return typed(dot_with_min<BlockQ4_1>, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q5_0: return typed(dot_scaled<BlockQ5_0>, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q5_1: return typed(dot_with_min<BlockQ5_1>, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q8_0: return typed(dot_scaled<BlockQ8_0>, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q4_K:
        return typed(lanes ? dot_q4_k_lanes : kernel == QuantKernel::gemv ? dot_q4_k_blocks : dot_q4_k_pairs, w, act, n / kQK_K);
    case MOME_TENSOR_TYPE_Q5_K: return typed(dot_q5_k, w, act, n / kQK_K);
    case MOME_TENSOR_TYPE_Q6_K: return typed(dot_q6_k, w, act, n / kQK_K);
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("tensor type %s has no quantized dot product in Mome", tensor_type_name(weight_type).c_str()));
    }
}

}  // namespace mome
