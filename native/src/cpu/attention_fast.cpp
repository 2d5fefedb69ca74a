// attention_ref's arithmetic rearranged for speed, one query head at a time so that a pool
// can spread heads over threads (a decode step has a single token). Still double sums, as
// the reference: the value rows are accumulated in the same order (so that part is
// bit-identical), the query-key dot products in four interleaved partial sums. The avx512
// variant (attention_avx512.cpp) does the same double operations in the same order.
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/matmul_variants.h"
#include "cpu/ops.h"

namespace mome {

double dot_double(const float* a, const float* b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += static_cast<double>(a[i]) * b[i];
        s1 += static_cast<double>(a[i + 1]) * b[i + 1];
        s2 += static_cast<double>(a[i + 2]) * b[i + 2];
        s3 += static_cast<double>(a[i + 3]) * b[i + 3];
    }
    for (; i < n; ++i) s0 += static_cast<double>(a[i]) * b[i];
    return (s0 + s1) + (s2 + s3);
}

void attention_head_portable(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                         int64_t n_head_kv, int64_t head_dim, int64_t h, float* out) {
    const int64_t kv_stride = n_head_kv * head_dim;
    const int64_t kv_offset = h / (n_head / n_head_kv) * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    thread_local std::vector<float> w;
    thread_local std::vector<double> acc;
    w.resize(static_cast<size_t>(n_positions));
    acc.assign(static_cast<size_t>(head_dim), 0.0);
    const float* qh = q + h * head_dim;
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_positions; ++j) {
        w[static_cast<size_t>(j)] = static_cast<float>(dot_double(qh, k_cache + j * kv_stride + kv_offset, head_dim)) * scale;
        max_score = std::max(max_score, w[static_cast<size_t>(j)]);
    }
    double sum = 0;
    for (float& s : w) {
        s = std::exp(s - max_score);
        sum += s;
    }
    for (int64_t j = 0; j < n_positions; ++j) {
        const double wj = w[static_cast<size_t>(j)];
        const float* v = v_cache + j * kv_stride + kv_offset;
        for (int64_t d = 0; d < head_dim; ++d) acc[static_cast<size_t>(d)] += wj * v[d];
    }
    float* oh = out + h * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) oh[d] = static_cast<float>(acc[static_cast<size_t>(d)] / sum);
}

void attention_head_fast(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                         int64_t n_head_kv, int64_t head_dim, int64_t h, float* out) {
    static const bool avx512 = std::strcmp(matmul_isa(), "avx512") == 0;
    (avx512 ? attention_head_avx512 : attention_head_portable)(q, k_cache, v_cache, n_positions, n_head, n_head_kv, head_dim, h, out);
}

}  // namespace mome
