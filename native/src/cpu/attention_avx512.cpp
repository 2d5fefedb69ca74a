// attention_head_portable (attention_fast.cpp) in AVX-512 registers: the same double
// products and sums in the same order, so the same result bit for bit. Compiled with
// -ffp-contract=off (native/CMakeLists.txt): a fused multiply-add rounds once where the plain
// code rounds twice.
//  - A query-key dot keeps the plain code's four partial sums s0..s3 as the four lanes of a
//    256-bit half: two keys (positions j and j + 1) per 512-bit register.
//  - The value rows are accumulated per dimension, eight dimensions per register, held in
//    registers over all positions for the usual head sizes (64, 128).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/ops.h"

namespace mome {

namespace {

// (s0 + s1) + (s2 + s3) over the four lanes, as dot_double combines its partial sums.
inline double combine_partial_sums(__m256d v) {
    alignas(32) double l[4];
    _mm256_store_pd(l, v);
    return (l[0] + l[1]) + (l[2] + l[3]);
}

// acc[d] = sum over positions j (in order) of w[j] * v_j[d], d < 8 * kChunks, in registers.
template <int kChunks>
void accumulate_values(const float* w, const float* v, int64_t n_positions, int64_t kv_stride, double* acc) {
    __m512d a[kChunks];
    for (int c = 0; c < kChunks; ++c) a[c] = _mm512_setzero_pd();
    for (int64_t j = 0; j < n_positions; ++j, v += kv_stride) {
        const __m512d wj = _mm512_set1_pd(static_cast<double>(w[j]));
        for (int c = 0; c < kChunks; ++c) a[c] = _mm512_add_pd(a[c], _mm512_mul_pd(wj, _mm512_cvtps_pd(_mm256_loadu_ps(v + 8 * c))));
    }
    for (int c = 0; c < kChunks; ++c) _mm512_storeu_pd(acc + 8 * c, a[c]);
}

// The same for any multiple of 8, with the sums in memory.
void accumulate_values_any(const float* w, const float* v, int64_t n_positions, int64_t kv_stride, int64_t head_dim, double* acc) {
    for (int64_t d = 0; d < head_dim; ++d) acc[d] = 0;
    for (int64_t j = 0; j < n_positions; ++j, v += kv_stride) {
        const __m512d wj = _mm512_set1_pd(static_cast<double>(w[j]));
        for (int64_t d = 0; d < head_dim; d += 8)
            _mm512_storeu_pd(acc + d, _mm512_add_pd(_mm512_loadu_pd(acc + d), _mm512_mul_pd(wj, _mm512_cvtps_pd(_mm256_loadu_ps(v + d)))));
    }
}

}  // namespace

void attention_head_avx512(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                           int64_t n_head_kv, int64_t head_dim, int64_t h, float* out) {
    if (head_dim % 8 != 0) return attention_head_portable(q, k_cache, v_cache, n_positions, n_head, n_head_kv, head_dim, h, out);
    const int64_t kv_stride = n_head_kv * head_dim;
    const int64_t kv_offset = h / (n_head / n_head_kv) * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    thread_local std::vector<float> w;
    thread_local std::vector<double> acc;
    thread_local std::vector<double> q_twice;  // q's groups of 4 as doubles, twice (once per key of a register)
    w.resize(static_cast<size_t>(n_positions));
    acc.resize(static_cast<size_t>(head_dim));
    q_twice.resize(static_cast<size_t>(2 * head_dim));
    const float* qh = q + h * head_dim;
    for (int64_t i = 0; i < head_dim; i += 4) {
        const __m256d q4 = _mm256_cvtps_pd(_mm_loadu_ps(qh + i));
        _mm512_storeu_pd(q_twice.data() + 2 * i, _mm512_insertf64x4(_mm512_castpd256_pd512(q4), q4, 1));
    }
    float max_score = -INFINITY;
    const float* k = k_cache + kv_offset;
    int64_t j = 0;
    for (; j + 2 <= n_positions; j += 2) {
        const float* k0 = k + j * kv_stride;
        const float* k1 = k0 + kv_stride;
        __m512d s = _mm512_setzero_pd();
        for (int64_t i = 0; i < head_dim; i += 4) {
            const __m256 keys = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(k0 + i)), _mm_loadu_ps(k1 + i), 1);
            s = _mm512_add_pd(s, _mm512_mul_pd(_mm512_loadu_pd(q_twice.data() + 2 * i), _mm512_cvtps_pd(keys)));
        }
        w[static_cast<size_t>(j)] = static_cast<float>(combine_partial_sums(_mm512_castpd512_pd256(s))) * scale;
        w[static_cast<size_t>(j + 1)] = static_cast<float>(combine_partial_sums(_mm512_extractf64x4_pd(s, 1))) * scale;
        max_score = std::max(max_score, w[static_cast<size_t>(j)]);
        max_score = std::max(max_score, w[static_cast<size_t>(j + 1)]);
    }
    if (j < n_positions) {
        const float* k0 = k + j * kv_stride;
        __m256d s = _mm256_setzero_pd();
        for (int64_t i = 0; i < head_dim; i += 4)
            s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_loadu_pd(q_twice.data() + 2 * i), _mm256_cvtps_pd(_mm_loadu_ps(k0 + i))));
        w[static_cast<size_t>(j)] = static_cast<float>(combine_partial_sums(s)) * scale;
        max_score = std::max(max_score, w[static_cast<size_t>(j)]);
    }
    double sum = 0;
    for (float& s : w) {
        s = std::exp(s - max_score);
        sum += s;
    }
    const float* v = v_cache + kv_offset;
    if (head_dim == 64) accumulate_values<8>(w.data(), v, n_positions, kv_stride, acc.data());
    else if (head_dim == 128) accumulate_values<16>(w.data(), v, n_positions, kv_stride, acc.data());
    else accumulate_values_any(w.data(), v, n_positions, kv_stride, head_dim, acc.data());
    float* oh = out + h * head_dim;
    const __m512d total = _mm512_set1_pd(sum);
    for (int64_t d = 0; d < head_dim; d += 8) _mm256_storeu_ps(oh + d, _mm512_cvtpd_ps(_mm512_div_pd(_mm512_loadu_pd(acc.data() + d), total)));
}

}  // namespace mome
