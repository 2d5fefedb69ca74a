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

struct Avx512Dot : X86Dot {
    template <int NR>
    static void packed_dots(uint32_t type, const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        if (type == MOME_TENSOR_TYPE_Q4_K) return q4_k_dots<NR>(w, row_bytes, a, n, out);
        if (type == MOME_TENSOR_TYPE_Q6_K) return q6_k_dots<NR>(w, row_bytes, a, n, out);
        X86Dot::packed_dots<NR>(type, w, row_bytes, a, n, out);
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
        float sum[NR] = {}, mins[NR] = {};
        for (int64_t i = 0; i < n / 256; ++i) {
            const int8_t* aq = a.q.data() + 256 * i;
            __m512i a_low[2], a_high[2];
            for (int h = 0; h < 2; ++h) {
                const __m512i runs01 = _mm512_loadu_si512(aq + 128 * h), runs23 = _mm512_loadu_si512(aq + 128 * h + 64);
                a_low[h] = _mm512_shuffle_i64x2(runs01, runs23, 0x44);
                a_high[h] = _mm512_shuffle_i64x2(runs01, runs23, 0xEE);
            }
            const __m256i groups = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.group.data() + 16 * i));
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ4_K& b = block<mome::BlockQ4_K>(w, row_bytes, r, i);
                uint64_t sc, mn;
                k_scales_and_mins(b.scales, &sc, &mn);
                const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<long long>(sc))));
                __m512i acc = _mm512_setzero_si512();
                for (int h = 0; h < 2; ++h) {
                    const __m512i bytes = _mm512_loadu_si512(b.qs + 64 * h);
                    const __m512i low = _mm512_and_si512(bytes, low4), high = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low4);
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(low, a_low[h]), _mm512_permutexvar_epi16(low_scale[h], scales)));
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(high, a_high[h]), _mm512_permutexvar_epi16(high_scale[h], scales)));
                }
                // Each minimum twice (its sub-block's two groups of 16), times the group sums.
                const __m128i m8 = _mm_cvtsi64_si128(static_cast<long long>(mn));
                const __m256i m16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
                const int32_t min = hsum_int_x86(_mm256_madd_epi16(m16, groups));
                sum[r] = std::fma(_cvtsh_ss(b.d) * a.scale[i], static_cast<float>(_mm512_reduce_add_epi32(acc)), sum[r]);
                mins[r] = std::fma(_cvtsh_ss(b.dmin) * a.scale[i], static_cast<float>(min), mins[r]);
            }
        }
        for (int r = 0; r < NR; ++r) out[r] = sum[r] - mins[r];
    }

    // Q6_K, per half of a super-block: [ql 0..31 | ql 32..63] low nibbles with qh's bits 0-1
    // and 2-3 on top are elements 0..63, their high nibbles with qh's bits 4-5 and 6-7 are
    // elements 64..127; the -32 is taken off as 32 * sum_g sc_g * group_g.
    template <int NR>
    static void q6_k_dots(const uint8_t* w, int64_t row_bytes, const mome::UnpackedRow& a, int64_t n, float* out) {
        const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
        const __m512i shift_low = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        const __m512i shift_high = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
        // Groups 8h..8h+3 and 8h+4..8h+7 of the super-block's 16.
        const __m512i first_scale[2] = {spread_index(0, 8, 1), spread_index(8, 8, 1)};
        const __m512i second_scale[2] = {spread_index(4, 8, 1), spread_index(12, 8, 1)};
        float sum[NR] = {};
        for (int64_t i = 0; i < n / 256; ++i) {
            const int8_t* aq = a.q.data() + 256 * i;
            const __m256i groups = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.group.data() + 16 * i));
            for (int r = 0; r < NR; ++r) {
                const mome::BlockQ6_K& b = block<mome::BlockQ6_K>(w, row_bytes, r, i);
                const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
                const __m512i scales = _mm512_castsi256_si512(sc16);
                __m512i acc = _mm512_setzero_si512();
                for (int h = 0; h < 2; ++h) {
                    const __m512i ql = _mm512_loadu_si512(b.ql + 64 * h);
                    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h)));
                    const __m512i first = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, shift_low), bits45));
                    const __m512i second = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                                           _mm512_and_si512(_mm512_srlv_epi16(qh, shift_high), bits45));
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(first, _mm512_loadu_si512(aq + 128 * h)),
                                                                  _mm512_permutexvar_epi16(first_scale[h], scales)));
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(second, _mm512_loadu_si512(aq + 128 * h + 64)),
                                                                  _mm512_permutexvar_epi16(second_scale[h], scales)));
                }
                const int32_t offset = 32 * hsum_int_x86(_mm256_madd_epi16(sc16, groups));
                sum[r] = std::fma(_cvtsh_ss(b.d) * a.scale[i], static_cast<float>(_mm512_reduce_add_epi32(acc) - offset), sum[r]);
            }
        }
        for (int r = 0; r < NR; ++r) out[r] = sum[r];
    }
};

}  // namespace
