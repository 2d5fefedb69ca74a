// The decode kernels of X86Dot (quant_kernels_x86.h) for Q4_K and Q6_K rows in 512-bit
// registers, for the avx512 build (AVX-512 F + BW). They compute the same integers per
// super-block and then the same float operations in the same order, so their results equal
// X86Dot's (and quant_dot_ref's) bit for bit; only the integer work is arranged differently:
//  - the quants stay unsigned (Q4_K's nibbles, Q6_K's 6-bit values before the -32), so
//    maddubs takes them as they are, with no sign trick;
//  - a sub-block's scale is applied to the 16-bit pair sums by madd (pairs x scale, added in
//    pairs to 32 bits), so every run's sums land in one accumulator without 32-bit multiplies;
//  - the constant parts come from the activation's group sums: Q4_K's minima as
//    sum_j m_j * (group sums of sub-block j), Q6_K's -32 as 32 * sum_g sc_g * group_g.
// Integer sums are exact in any order, so the per-super-block integers are the ones X86Dot
// forms.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "mome.h"
#include "quant/quant_blocks.h"
#include "quant/quant_kernels_x86.h"
#include "quant/quant_unpacked.h"

namespace {

// The 8 six-bit scales and the 8 minima of a Q4_K/Q5_K block, one byte each (k_scale_min for
// every sub-block at once): bytes 0..3 of the 12 are the scales of sub-blocks 0..3 (low 6
// bits), bytes 4..7 their minima; sub-blocks 4..7 take their low 4 bits from the nibbles of
// bytes 8..11 and their top 2 bits from the top bits of bytes 0..3 (scales) and 4..7 (minima).
inline void k_scales_and_mins(const uint8_t* q, uint64_t* scales, uint64_t* mins) {
    uint32_t s03, m03, low47;
    std::memcpy(&s03, q, 4);
    std::memcpy(&m03, q + 4, 4);
    std::memcpy(&low47, q + 8, 4);
    const uint32_t six = 0x3F3F3F3F, four = 0x0F0F0F0F, two = 0x03030303;
    const uint32_t s47 = (low47 & four) | (((s03 >> 6) & two) << 4);
    const uint32_t m47 = ((low47 >> 4) & four) | (((m03 >> 6) & two) << 4);
    *scales = (s03 & six) | (static_cast<uint64_t>(s47) << 32);
    *mins = (m03 & six) | (static_cast<uint64_t>(m47) << 32);
}

// Indices for _mm512_permutexvar_epi16 that spread 16-bit scales over the pair sums they
// scale: lane k (of 32) takes lane first + step * (k / width) (width 16: one scale per run of
// 32 bytes, as Q4_K's sub-blocks; width 8: one per group of 16 bytes, as Q6_K's).
inline __m512i spread_index(int first, int width, int step) {
    alignas(64) int16_t idx[32];
    for (int k = 0; k < 32; ++k) idx[k] = static_cast<int16_t>(first + step * (k / width));
    return _mm512_load_si512(idx);
}

// [low | high] (AVX-512 F only: its 256-bit inserts are on 64-bit lanes).
inline __m512 halves(__m256 low, __m256 high) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(low)), _mm256_castps_pd(high), 1));
}

// The totals of four rows' integer vectors (each row's lanes summed), as four int32 lanes.
inline __m128i row_totals(__m256i r0, __m256i r1, __m256i r2, __m256i r3) {
    const __m256i all = _mm256_hadd_epi32(_mm256_hadd_epi32(r0, r1), _mm256_hadd_epi32(r2, r3));
    return _mm_add_epi32(_mm256_castsi256_si128(all), _mm256_extracti128_si256(all, 1));
}
inline __m256i fold(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }
inline __m128i row_totals(__m512i r0, __m512i r1, __m512i r2, __m512i r3) { return row_totals(fold(r0), fold(r1), fold(r2), fold(r3)); }
inline int32_t row_total(__m256i v) { return hsum_int_x86(v); }
inline int32_t row_total(__m512i v) { return _mm512_reduce_add_epi32(v); }

// NR rows' float sums over super-blocks, X86Dot's sum = fma(d * a_d, float(integer), sum)
// per super-block: four rows as the four lanes of one register, so one reduction and one
// multiply-add serve them all (the same operations on each lane as the scalar code).
template <int NR>
struct RowSums {
    float s[NR] = {};
    template <class V>
    void add(const uint16_t* d, float a_scale, const V* ints) {
        for (int r = 0; r < NR; ++r) s[r] = std::fma(_cvtsh_ss(d[r]) * a_scale, static_cast<float>(row_total(ints[r])), s[r]);
    }
    float value(int r) const { return s[r]; }
};

template <>
struct RowSums<4> {
    __m128 s = _mm_setzero_ps();
    template <class V>
    void add(const uint16_t* d, float a_scale, const V* ints) {
        const __m128 scale = _mm_mul_ps(_mm_cvtph_ps(_mm_setr_epi16(static_cast<int16_t>(d[0]), static_cast<int16_t>(d[1]),
                                                                    static_cast<int16_t>(d[2]), static_cast<int16_t>(d[3]), 0, 0, 0, 0)),
                                        _mm_set1_ps(a_scale));
        s = _mm_fmadd_ps(scale, _mm_cvtepi32_ps(row_totals(ints[0], ints[1], ints[2], ints[3])), s);
    }
    float value(int r) const {
        alignas(16) float l[4];
        _mm_store_ps(l, s);
        return l[r];
    }
};

struct Avx512Dot : X86Dot {
    template <int NR>
    static void packed_dots(uint32_t type, const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        if (type == MOME_TENSOR_TYPE_Q8_0 && NR % 2 == 0) return q8_0_dots<NR>(w, row_bytes, a, n, out);
        if (type == MOME_TENSOR_TYPE_Q4_K) return q4_k_dots<NR>(w, row_bytes, a, n, out);
        if (type == MOME_TENSOR_TYPE_Q6_K) return q6_k_dots<NR>(w, row_bytes, a, n, out);
        X86Dot::packed_dots<NR>(type, w, row_bytes, a, n, out);
    }

    // Q8_0, two rows per register: lanes 0..7 are row r's eight float lanes (X86Dot's), lanes
    // 8..15 row r + 1's. The integer lane sums are |w| times a with w's sign, as in X86Dot
    // (AVX-512 has no sign instruction: a is negated where w is negative).
    template <int NR>
    static void q8_0_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        constexpr int kPairs = NR / 2;
        const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi16(1);
        __m512 acc[kPairs];
        for (int p = 0; p < kPairs; ++p) acc[p] = _mm512_setzero_ps();
        for (int64_t i = 0; i < n / 32; ++i) {
            const __m512i av = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q.data() + 32 * i)));
            const __m512 a_scale = _mm512_set1_ps(a.scale[i]);
            for (int p = 0; p < kPairs; ++p) {
                const mome::BlockQ8_0& b0 = block<mome::BlockQ8_0>(w, row_bytes, 2 * p, i);
                const mome::BlockQ8_0& b1 = block<mome::BlockQ8_0>(w, row_bytes, 2 * p + 1, i);
                const __m512i wv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0.qs))),
                                                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1.qs)), 1);
                const __m512i signed_a = _mm512_mask_sub_epi8(av, _mm512_movepi8_mask(wv), zero, av);
                const __m512i sums = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(wv), signed_a), ones);
                // The two rows' d times a's d, each product in float as X86Dot forms it.
                const __m512 d = halves(_mm256_set1_ps(_cvtsh_ss(b0.d)), _mm256_set1_ps(_cvtsh_ss(b1.d)));
                acc[p] = _mm512_fmadd_ps(_mm512_mul_ps(d, a_scale), _mm512_cvtepi32_ps(sums), acc[p]);
            }
        }
        for (int p = 0; p < kPairs; ++p) {
            out[2 * p] = lanes_total_x86(_mm512_castps512_ps256(acc[p]));
            out[2 * p + 1] = lanes_total_x86(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p]), 1)));
        }
    }

    // Q4_K: 64 bytes of qs hold four runs of 32: the low nibbles of bytes 0..31 and 32..63
    // are runs 0 and 2 (of the four), the high nibbles runs 1 and 3. The activations are
    // arranged once per super-block to match ([run 0 | run 2] and [run 1 | run 3]).
    template <int NR>
    static void q4_k_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        // Half h of the super-block: the low nibbles are sub-blocks 4h and 4h + 2, the high
        // nibbles 4h + 1 and 4h + 3.
        const __m512i low_scale[2] = {spread_index(0, 16, 2), spread_index(4, 16, 2)};
        const __m512i high_scale[2] = {spread_index(1, 16, 2), spread_index(5, 16, 2)};
        RowSums<NR> sum, mins;
        for (int64_t i = 0; i < n / 256; ++i) {
            const int8_t* aq = a.q.data() + 256 * i;
            __m512i a_low[2], a_high[2];
            for (int h = 0; h < 2; ++h) {
                const __m512i runs01 = _mm512_loadu_si512(aq + 128 * h), runs23 = _mm512_loadu_si512(aq + 128 * h + 64);
                a_low[h] = _mm512_shuffle_i64x2(runs01, runs23, 0x44);
                a_high[h] = _mm512_shuffle_i64x2(runs01, runs23, 0xEE);
            }
            const __m256i groups = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.group.data() + 16 * i));
            __m512i dot[NR];
            __m256i min[NR];
            uint16_t d[NR], dmin[NR];
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ4_K& b = block<mome::BlockQ4_K>(w, row_bytes, r, i);
                d[r] = b.d;
                dmin[r] = b.dmin;
                uint64_t sc, mn;
                k_scales_and_mins(b.scales, &sc, &mn);
                const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc))));
                dot[r] = _mm512_setzero_si512();
                for (int h = 0; h < 2; ++h) {
                    const __m512i bytes = _mm512_loadu_si512(b.qs + 64 * h);
                    const __m512i low = _mm512_and_si512(bytes, low4), high = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);
                    dot[r] = _mm512_add_epi32(dot[r], _mm512_madd_epi16(_mm512_maddubs_epi16(low, a_low[h]), _mm512_permutexvar_epi16(low_scale[h], scales)));
                    dot[r] = _mm512_add_epi32(dot[r], _mm512_madd_epi16(_mm512_maddubs_epi16(high, a_high[h]), _mm512_permutexvar_epi16(high_scale[h], scales)));
                }
                // Each minimum twice (its sub-block's two groups of 16), times the group sums.
                const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mn));
                min[r] = _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8)), groups);
            }
            sum.add(d, a.scale[i], dot);
            mins.add(dmin, a.scale[i], min);
        }
        for (int r = 0; r < NR; ++r) out[r] = sum.value(r) - mins.value(r);
    }

    // Q6_K, per half of a super-block: [ql 0..31 | ql 32..63] low nibbles with qh's bits 0-1
    // and 2-3 on top are elements 0..63, their high nibbles with qh's bits 4-5 and 6-7 are
    // elements 64..127; the -32 is taken off as 32 * sum_g sc_g * group_g. Each 512-bit sum
    // holds two runs of 32; folded to 256 bits, lane j holds elements 4j..4j+3 of every run,
    // X86Dot's lane j, and the -32's share sits in lane m as in q6_offsets_x86: ggml's 8 float
    // lanes per row.
    template <int NR>
    static void q6_k_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
        const __m512i shift_low = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i shift_high = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        // Groups 8h..8h+3 and 8h+4..8h+7 of the super-block's 16.
        const __m512i first_scale[2] = {spread_index(0, 8, 1), spread_index(8, 8, 1)};
        const __m512i second_scale[2] = {spread_index(4, 8, 1), spread_index(12, 8, 1)};
        const __m256i minus_32 = _mm256_set1_epi32(-32);
        __m256 acc[NR];
        for (int r = 0; r < NR; ++r) acc[r] = _mm256_setzero_ps();
        for (int64_t i = 0; i < n / 256; ++i) {
            const int8_t* aq = a.q.data() + 256 * i;
            const __m256i groups = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.group.data() + 16 * i));
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ6_K& b = block<mome::BlockQ6_K>(w, row_bytes, r, i);
                const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
                const __m512i scales = _mm512_castsi256_si512(sc16);
                __m512i dot = _mm512_setzero_si512();
                for (int h = 0; h < 2; ++h) {
                    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
                    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h)));
                    const __m512i first = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, shift_low), bits45));
                    const __m512i second = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                                           _mm512_and_si512(_mm512_srlv_epi16(qh, shift_high), bits45));
                    dot = _mm512_add_epi32(dot, _mm512_madd_epi16(_mm512_maddubs_epi16(first, _mm512_loadu_si512(aq + 128 * h)),
                                                                  _mm512_permutexvar_epi16(first_scale[h], scales)));
                    dot = _mm512_add_epi32(dot, _mm512_madd_epi16(_mm512_maddubs_epi16(second, _mm512_loadu_si512(aq + 128 * h + 64)),
                                                                  _mm512_permutexvar_epi16(second_scale[h], scales)));
                }
                const __m256i lanes = _mm256_add_epi32(fold(dot), _mm256_mullo_epi32(_mm256_madd_epi16(sc16, groups), minus_32));
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(b.d) * a.scale[i]), _mm256_cvtepi32_ps(lanes), acc[r]);
            }
        }
        for (int r = 0; r < NR; ++r) out[r] = lanes_total_x86(acc[r]);
    }
};

}  // namespace
