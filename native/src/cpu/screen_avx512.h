// Shared pieces of the AVX-512 screening kernels (screen_amx.cpp, screen_bf16.cpp): include
// only from files built with AVX-512 F, BW, VL and BF16.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/screen.h"

namespace mome {

// Row j of a key block into 32-dimension steps of BF16 at dst (zero past dim); returns the
// lanes of the F32 sum of squares of the key as stored.
inline __m512 convert_key(const Tensor& keys, int64_t j, int64_t dim, uint16_t* dst) {
    __m512 sumsq = _mm512_setzero_ps();
    for (int64_t i = 0; i < dim; i += 32) {
        const int64_t left = std::min<int64_t>(32, dim - i);
        const __mmask32 m32 = left == 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
        __m512i packed;
        if (keys.type == MOME_TENSOR_TYPE_BF16) {
            packed = _mm512_maskz_loadu_epi16(m32, reinterpret_cast<const uint16_t*>(keys.data) + j * dim + i);
            sumsq = _mm512_dpbf16_ps(sumsq, reinterpret_cast<__m512bh&>(packed), reinterpret_cast<__m512bh&>(packed));
        } else {
            const __mmask16 lo_mask = static_cast<__mmask16>(m32), hi_mask = static_cast<__mmask16>(m32 >> 16);
            __m512 lo, hi;
            if (keys.type == MOME_TENSOR_TYPE_F32) {
                const float* src = reinterpret_cast<const float*>(keys.data) + j * dim + i;
                lo = _mm512_maskz_loadu_ps(lo_mask, src);
                hi = _mm512_maskz_loadu_ps(hi_mask, src + 16);
            } else {
                const uint16_t* src = reinterpret_cast<const uint16_t*>(keys.data) + j * dim + i;
                lo = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lo_mask, src));
                hi = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(hi_mask, src + 16));
            }
            sumsq = _mm512_fmadd_ps(lo, lo, _mm512_fmadd_ps(hi, hi, sumsq));
            const __m512bh bf = _mm512_cvtne2ps_pbh(hi, lo);
            packed = reinterpret_cast<const __m512i&>(bf);
        }
        _mm512_storeu_si512(dst + i, packed);
    }
    return sumsq;
}

// The 16 lane totals of v[0..16) as one vector, element j the total of v[j]: pairs of vectors
// folded in halves four times (each fold adds the two halves of both and keeps them side by
// side), then the elements put back in order.
inline __m512 totals16(__m512 v[16]) {
    for (int j = 0; j < 16; j += 2)  // 256-bit halves: v[j] in the low half, v[j + 1] in the high
        v[j / 2] = _mm512_add_ps(_mm512_shuffle_f32x4(v[j], v[j + 1], 0x44), _mm512_shuffle_f32x4(v[j], v[j + 1], 0xee));
    for (int j = 0; j < 8; j += 2)  // 128-bit lanes: one per key
        v[j / 2] = _mm512_add_ps(_mm512_shuffle_f32x4(v[j], v[j + 1], 0x88), _mm512_shuffle_f32x4(v[j], v[j + 1], 0xdd));
    for (int j = 0; j < 4; j += 2)  // pairs within each lane
        v[j / 2] = _mm512_add_ps(_mm512_shuffle_ps(v[j], v[j + 1], 0x44), _mm512_shuffle_ps(v[j], v[j + 1], 0xee));
    const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xdd));
    // Lane L, element m now holds key 4 m + L.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, t);
}

// The scan of `count` keys' scores ([key][16 x groups lanes]) and norms, the first of them
// row `first` of the block: a hit where a + slack n >= floor, or a is NaN (the comparison is
// unordered) or -inf; an infinite norm reaches +inf, or NaN where the slack is 0. The masks
// first, the hits from them after, so that the vector loop keeps its registers. floors and
// slacks cover every lane (padding lanes are masked off).
inline void scan_scores(const float* scores, int64_t count, int64_t first, const float* norms, const ScreenQueries& q, const float* floors,
                        const float* slacks, std::vector<uint16_t>& masks, std::vector<ScreenHit>& hits) {
    const int64_t lanes = q.groups * 16;
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    masks.resize(static_cast<size_t>(count * q.groups));
    bool any = false;
    for (int64_t g = 0; g < q.groups; ++g) {
        const __m512 fl = _mm512_loadu_ps(floors + 16 * g), sl = _mm512_loadu_ps(slacks + 16 * g);
        const int64_t valid = std::min<int64_t>(16, q.n_queries - 16 * g);
        const __mmask16 valid_mask = static_cast<__mmask16>(valid == 16 ? 0xffffu : (1u << valid) - 1);
        for (int64_t j = 0; j < count; ++j) {
            const __m512 v = _mm512_loadu_ps(scores + j * lanes + 16 * g);
            const __mmask16 reach = _mm512_mask_cmp_ps_mask(valid_mask, _mm512_fmadd_ps(sl, _mm512_set1_ps(norms[j]), v), fl, _CMP_NLT_UQ);
            const __mmask16 mask = reach | _mm512_mask_cmp_ps_mask(valid_mask, v, minus_inf, _CMP_EQ_OQ);
            masks[static_cast<size_t>(j * q.groups + g)] = mask;
            any |= mask != 0;
        }
    }
    if (!any) return;
    for (int64_t j = 0; j < count; ++j)
        for (int64_t g = 0; g < q.groups; ++g)
            for (uint32_t mask = masks[static_cast<size_t>(j * q.groups + g)]; mask; mask &= mask - 1) {
                const int lane = __builtin_ctz(mask);
                hits.push_back({static_cast<int32_t>(first + j), static_cast<int32_t>(16 * g + lane),
                                scores[j * lanes + 16 * g + lane], norms[j]});
            }
}

// floor and slack (one per query) copied into lane-padded arrays: padding lanes get floor +inf
// and slack 0, so that they never pass (the scan also masks them off).
inline void pad_lanes(const ScreenQueries& q, const float* floor, const float* slack, std::vector<float>& floors, std::vector<float>& slacks) {
    const size_t lanes = static_cast<size_t>(q.groups * 16);
    floors.assign(lanes, INFINITY);
    slacks.assign(lanes, 0.0f);
    std::copy_n(floor, q.n_queries, floors.begin());
    std::copy_n(slack, q.n_queries, slacks.begin());
}

}  // namespace mome
