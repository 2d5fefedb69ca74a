// unpacked_dot (quant_kernels.h) with AVX2 intrinsics, for the AVX2 and AVX-512 builds: the 8
// float lanes live in one register, the integer lane sums come from maddubs/madd, super-block
// sums are accumulated as vectors. The same integers and the same float operations in the
// same order as the portable code, so the results are identical bit for bit.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "mome.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"
#include "quant/quant_unpacked.h"

namespace {

// Lane m = sum of w[i] a[i] over bytes 4m..4m+3 of a run of 32: |w| times a with w's sign,
// multiplied and added in pairs to 16 bits (at most 2 x 128 x 127, no saturation), then
// pairs of those to 32 bits.
inline __m256i lane_sums_x86(__m256i wv, const int8_t* a) {
    const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(av, wv));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

inline __m256i lane_sums_x86(const int8_t* w, const int8_t* a) {
    return lane_sums_x86(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)), a);
}

inline int32_t hsum_int_x86(__m256i v) {
    int32_t l[8];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(l), v);
    return l[0] + l[1] + l[2] + l[3] + l[4] + l[5] + l[6] + l[7];
}

// ggml's hsum_float_8 order: (m, m + 4) pairs, then (0 + 2) + (1 + 3).
inline float lanes_total_x86(__m256 acc) {
    float l[8];
    _mm256_storeu_ps(l, acc);
    const float r0 = l[0] + l[4], r1 = l[1] + l[5], r2 = l[2] + l[6], r3 = l[3] + l[7];
    return (r0 + r2) + (r1 + r3);
}

// Lanes 0..3 hold the first 16 elements of a run (scale lo), lanes 4..7 the last 16 (hi).
inline __m256i run_scales_x86(int32_t lo, int32_t hi) { return _mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi); }

// Q4_K/Q5_K/Q6_K: the 8 lane sums of super-block i, run r's lanes 0..3 scaled by the weight's
// group 2r, lanes 4..7 by group 2r + 1.
inline __m256i k_lanes_x86(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t i) {
    __m256i sums = _mm256_setzero_si256();
    for (int run = 0; run < 8; ++run) {
        const int64_t g = 16 * i + 2 * run;
        const __m256i lanes = lane_sums_x86(w.q.data() + 256 * i + 32 * run, a.q.data() + 256 * i + 32 * run);
        sums = _mm256_add_epi32(sums, _mm256_mullo_epi32(lanes, run_scales_x86(w.group[g], w.group[g + 1])));
    }
    return sums;
}

// Q6_K: lane m's share of the offset 32, 32 (sc_2m bsum_2m + sc_2m+1 bsum_2m+1), from 16 int16
// scales and 16 int16 activation sums.
inline __m256i q6_offsets_x86(const int16_t* scales, const int16_t* bsums) {
    const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales));
    const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums));
    return _mm256_slli_epi32(_mm256_madd_epi16(sc, bs), 5);
}

// Q4_K/Q5_K: the integer minimum terms of the 4 pairs of sub-blocks of super-block i.
inline void k_min_pairs_x86(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t i, int32_t out[4]) {
    for (int k = 0; k < 4; ++k) {
        int32_t min = 0;
        for (int64_t g = 16 * i + 4 * k; g < 16 * i + 4 * k + 4; ++g) min += w.group_min[g] * a.group[g];
        out[k] = min;
    }
}

struct X86Dot {
    static float dot(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t n, mome::QuantKernel kernel) {
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
                    sum = std::fma(w.scale[i] * a.scale[i], static_cast<float>(hsum_int_x86(lane_sums_x86(wq + 32 * i, aq + 32 * i))), sum);
                return sum;
            }
            __m256 acc = _mm256_setzero_ps();
            float mins = 0;
            for (int64_t i = 0; i < n / 32; ++i) {
                if (w.has_min) mins = std::fma(w.extra[i], a.extra[i], mins);
                const __m256 sums = _mm256_cvtepi32_ps(lane_sums_x86(wq + 32 * i, aq + 32 * i));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(w.scale[i] * a.scale[i]), sums, acc);
            }
            return w.has_min ? lanes_total_x86(acc) + mins : lanes_total_x86(acc);
        }
        case MOME_TENSOR_TYPE_Q6_K: {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t i = 0; i < n / 256; ++i) {
                const __m256i sums = _mm256_sub_epi32(k_lanes_x86(w, a, i), q6_offsets_x86(w.group.data() + 16 * i, a.group.data() + 16 * i));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(a.scale[i] * w.scale[i]), _mm256_cvtepi32_ps(sums), acc);
            }
            return lanes_total_x86(acc);
        }
        default: break;
        }
        // Q4_K, Q5_K
        if (lanes_order) {
            __m256 acc = _mm256_setzero_ps();
            __m128 min_lanes = _mm_setzero_ps();
            float mins = 0;
            for (int64_t i = 0; i < n / 256; ++i) {
                int32_t pairs[4];
                k_min_pairs_x86(w, a, i, pairs);
                const float dmin = -a.scale[i] * w.extra[i];
                if (w.type == MOME_TENSOR_TYPE_Q4_K) {
                    const __m128 p = _mm_cvtepi32_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pairs)));
                    min_lanes = _mm_fmadd_ps(_mm_set1_ps(dmin), p, min_lanes);
                } else {
                    mins = std::fma(dmin, static_cast<float>(pairs[0] + pairs[1] + pairs[2] + pairs[3]), mins);
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(a.scale[i] * w.scale[i]), _mm256_cvtepi32_ps(k_lanes_x86(w, a, i)), acc);
            }
            if (w.type == MOME_TENSOR_TYPE_Q4_K) {
                float l[4];
                _mm_storeu_ps(l, min_lanes);
                return lanes_total_x86(acc) + ((l[0] + l[2]) + (l[1] + l[3]));
            }
            return lanes_total_x86(acc) + mins;
        }
        // Repacked Q4_K: gemv one FMA per super-block, gemm one per pair of sub-blocks.
        float sum = 0, mins = 0;
        for (int64_t i = 0; i < n / 256; ++i) {
            const float d = w.scale[i] * a.scale[i], dmin = w.extra[i] * a.scale[i];
            int32_t pairs[4];
            k_min_pairs_x86(w, a, i, pairs);
            if (kernel == mome::QuantKernel::gemv) {
                sum = std::fma(d, static_cast<float>(hsum_int_x86(k_lanes_x86(w, a, i))), sum);
                mins = std::fma(dmin, static_cast<float>(pairs[0] + pairs[1] + pairs[2] + pairs[3]), mins);
                continue;
            }
            for (int k = 0; k < 4; ++k) {
                const int64_t g = 16 * i + 4 * k;
                const __m256i lo = lane_sums_x86(wq + 256 * i + 64 * k, aq + 256 * i + 64 * k);
                const __m256i hi = lane_sums_x86(wq + 256 * i + 64 * k + 32, aq + 256 * i + 64 * k + 32);
                const __m256i pair = _mm256_add_epi32(_mm256_mullo_epi32(lo, _mm256_set1_epi32(w.group[g])),
                                                      _mm256_mullo_epi32(hi, _mm256_set1_epi32(w.group[g + 2])));
                sum = std::fma(d, static_cast<float>(hsum_int_x86(pair)), sum);
                mins = std::fma(dmin, static_cast<float>(pairs[k]), mins);
            }
        }
        return sum - mins;
    }

    // Weights read in their packed blocks, for decode, where unpacking a row costs more than
    // using it once: the integers and float steps of dot() for the same type, so the same
    // result bit for bit. NR rows at a time (rows row_bytes apart) keep NR independent chains
    // of float sums in flight.
    static bool reads_packed(uint32_t type, mome::QuantKernel kernel) {
        if (type == MOME_TENSOR_TYPE_Q4_K) return kernel == mome::QuantKernel::gemv;
        return type == MOME_TENSOR_TYPE_Q8_0 || type == MOME_TENSOR_TYPE_Q6_K;
    }

    template <int NR>
    static void packed_dots(uint32_t type, const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        if (type == MOME_TENSOR_TYPE_Q8_0) return q8_0_dots<NR>(w, row_bytes, a, n, out);
        if (type == MOME_TENSOR_TYPE_Q4_K) return q4_k_dots<NR>(w, row_bytes, a, n, out);
        return q6_k_dots<NR>(w, row_bytes, a, n, out);
    }

    template <class Block>
    static const Block& block(const uint8_t* w, int64_t row_bytes, int r, int64_t i) {
        return reinterpret_cast<const Block*>(w + r * row_bytes)[i];
    }

    template <int NR>
    static void q8_0_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        __m256 acc[NR];
        for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / 32; ++i) {
            const int8_t* aq = a.q.data() + 32 * i;
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ8_0& b = block<mome::BlockQ8_0>(w, row_bytes, r, i);
                const __m256 sums = _mm256_cvtepi32_ps(lane_sums_x86(b.qs, aq));
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b.d) * a.scale[i]), sums, acc[r]);
            }
        }
        for (int r = 0; r < NR; ++r) out[r] = lanes_total_x86(acc[r]);
    }

    // Q4_K: each 32 bytes of qs hold the low nibbles of one run of 32 and the high nibbles of
    // the next; scales and minima come from k_scale_min, as when unpacking.
    template <int NR>
    static void q4_k_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        float sum[NR] = {}, mins[NR] = {};
        for (int64_t i = 0; i < n / 256; ++i) {
            const int8_t* aq = a.q.data() + 256 * i;
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ4_K& b = block<mome::BlockQ4_K>(w, row_bytes, r, i);
                uint8_t sc[8], m[8];
                for (int j = 0; j < 8; ++j) mome::k_scale_min(j, b.scales, &sc[j], &m[j]);
                __m256i sums = _mm256_setzero_si256();
                for (int chunk = 0; chunk < 4; ++chunk) {
                    const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * chunk));
                    const __m256i lo = lane_sums_x86(_mm256_and_si256(bytes, low4), aq + 64 * chunk);
                    const __m256i hi = lane_sums_x86(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4), aq + 64 * chunk + 32);
                    sums = _mm256_add_epi32(sums, _mm256_mullo_epi32(lo, _mm256_set1_epi32(sc[2 * chunk])));
                    sums = _mm256_add_epi32(sums, _mm256_mullo_epi32(hi, _mm256_set1_epi32(sc[2 * chunk + 1])));
                }
                int32_t min = 0;
                for (int g = 0; g < 16; ++g) min += m[g / 2] * a.group[static_cast<size_t>(16 * i + g)];
                sum[r] = std::fma(_cvtsh_ss(b.d) * a.scale[i], static_cast<float>(hsum_int_x86(sums)), sum[r]);
                mins[r] = std::fma(_cvtsh_ss(b.dmin) * a.scale[i], static_cast<float>(min), mins[r]);
            }
        }
        for (int r = 0; r < NR; ++r) out[r] = sum[r] - mins[r];
    }

    // Q6_K: per half of a super-block, runs 0 and 2 take the low and high nibbles of ql[0..32),
    // runs 1 and 3 those of ql[32..64), each with two bits of qh[0..32) on top (0..63, the offset
    // 32 subtracted per lane as in dot()).
    template <int NR>
    static void q6_k_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
        __m256 acc[NR];
        for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / 256; ++i) {
            const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.group.data() + 16 * i));
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ6_K& b = block<mome::BlockQ6_K>(w, row_bytes, r, i);
                __m256i sums = _mm256_setzero_si256();
                for (int half = 0; half < 2; ++half) {
                    const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * half));
                    const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * half + 32));
                    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half));
                    const __m256i runs[4] = {
                        _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)),
                        _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, bits45)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45)),
                    };
                    for (int run = 0; run < 4; ++run) {
                        const int64_t g = 8 * half + 2 * run;  // groups of 16 within the super-block
                        const __m256i lanes = lane_sums_x86(runs[run], a.q.data() + 256 * i + 128 * half + 32 * run);
                        sums = _mm256_add_epi32(sums, _mm256_mullo_epi32(lanes, run_scales_x86(b.scales[g], b.scales[g + 1])));
                    }
                }
                const __m256i scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
                sums = _mm256_sub_epi32(sums, _mm256_slli_epi32(_mm256_madd_epi16(scales, bsums), 5));
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b.d) * a.scale[i]), _mm256_cvtepi32_ps(sums), acc[r]);
            }
        }
        for (int r = 0; r < NR; ++r) out[r] = lanes_total_x86(acc[r]);
    }
};

}  // namespace
