// attention_head_ref (cpu/ops_ref.cpp) in AVX-512 registers, bit-identical: the same fused
// multiply-adds into the same lanes (cpu/sums_like_ggml.h), the same totals.
//  - A query-key dot holds ggml_vec_dot_f32's four accumulators as four registers.
//  - The value sums run over dimensions, 16 per register: the accumulator of lane r (of 16
//    for tinyBLAS's order, of 64 for vec_dot's) is a row of head_dim floats in memory, and
//    position j adds p_j v_j to row j % lanes; the rows are then folded and totalled lane by
//    lane in the reference's order, 16 dimensions at a time.
// Head sizes that are not a multiple of 16 take the reference. Compiled with
// -ffp-contract=off (native/CMakeLists.txt): every fused multiply-add here is written out.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/exp_like_ggml.h"
#include "cpu/ops.h"
#include "cpu/sums_like_ggml.h"

namespace mome {

namespace {

// ggml_vec_dot_f32 of a key and the query, n elements.
float score(const float* k, const float* q, int64_t n) {
    const int64_t in_lanes = n - n % 64;
    __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t i = 0; i < in_lanes; i += 64)
        for (int r = 0; r < 4; ++r) a[r] = _mm512_fmadd_ps(_mm512_loadu_ps(k + i + 16 * r), _mm512_loadu_ps(q + i + 16 * r), a[r]);
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3])));
    float sum = lanes16_total(lanes);
    int64_t i = in_lanes;
    for (const int64_t fused = n - (n - i) % 8; i < fused; ++i) sum += k[i] * q[i];
    for (; i < n; ++i) sum = std::fma(k[i], q[i], sum);
    return sum;
}

// rows[r][d] for lanes r < 16 totalled over r as lanes16_total does, for 16 dimensions at once.
__m512 total_of_rows(const float* rows, int64_t stride) {
    __m512 h8[8], h4[4];
    for (int i = 0; i < 8; ++i) h8[i] = _mm512_add_ps(_mm512_loadu_ps(rows + i * stride), _mm512_loadu_ps(rows + (i + 8) * stride));
    for (int i = 0; i < 4; ++i) h4[i] = _mm512_add_ps(h8[i], h8[i + 4]);
    return _mm512_add_ps(_mm512_add_ps(h4[0], h4[2]), _mm512_add_ps(h4[1], h4[3]));
}

}  // namespace

void attention_head_avx512(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                           int64_t n_head_kv, int64_t head_dim, int64_t h, bool one_token_call, float* out) {
    if (head_dim % 16 != 0) return attention_head_ref(q, k_cache, v_cache, n_positions, n_head, n_head_kv, head_dim, h, one_token_call, out);
    const int64_t kv_stride = n_head_kv * head_dim;
    const int64_t kv_offset = h / (n_head / n_head_kv) * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const float* qh = q + h * head_dim;
    thread_local std::vector<float> p, rows;
    p.assign(static_cast<size_t>((n_positions + 15) / 16 * 16), 0.0f);
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_positions; ++j) {
        p[static_cast<size_t>(j)] = score(k_cache + j * kv_stride + kv_offset, qh, head_dim) * scale;
        max_score = std::max(max_score, p[static_cast<size_t>(j)]);
    }
    for (int64_t j = 0; j < n_positions; ++j) p[static_cast<size_t>(j)] = exp_like_ggml(p[static_cast<size_t>(j)] - max_score);
    double sum = 0;
    for (size_t c = 0; c < p.size(); c += 16) sum += static_cast<double>(lanes16_total(p.data() + c));
    const float inv = static_cast<float>(1.0 / sum);
    for (float& x : p) x *= inv;

    // Value sums: every position lands in a lane, as kv_view_length(n) >= n is a multiple of 64.
    const int64_t n_lanes = one_token_call ? 64 : 16;
    rows.assign(static_cast<size_t>(n_lanes * head_dim), 0.0f);
    for (int64_t j = 0; j < n_positions; ++j) {
        const __m512 pj = _mm512_set1_ps(p[static_cast<size_t>(j)]);
        const float* v = v_cache + j * kv_stride + kv_offset;
        float* row = rows.data() + (j % n_lanes) * head_dim;
        for (int64_t d = 0; d < head_dim; d += 16)
            _mm512_storeu_ps(row + d, _mm512_fmadd_ps(_mm512_loadu_ps(v + d), pj, _mm512_loadu_ps(row + d)));
    }
    if (one_token_call) {  // fold_lanes64 into rows 0..15
        for (int i = 0; i < 16; ++i)
            for (int64_t d = 0; d < head_dim; d += 16) {
                const auto at = [&](int r) { return _mm512_loadu_ps(rows.data() + r * head_dim + d); };
                _mm512_storeu_ps(rows.data() + i * head_dim + d, _mm512_add_ps(_mm512_add_ps(at(i), at(32 + i)), _mm512_add_ps(at(16 + i), at(48 + i))));
            }
    }
    float* oh = out + h * head_dim;
    for (int64_t d = 0; d < head_dim; d += 16) _mm512_storeu_ps(oh + d, total_of_rows(rows.data() + d, head_dim));
}

}  // namespace mome
