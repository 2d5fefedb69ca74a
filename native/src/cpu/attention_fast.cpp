// dot_double (attention's backward), and the choice of attention_head_fast's variant.
#include <cstring>

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

void attention_head_fast(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                         int64_t n_head_kv, int64_t head_dim, int64_t h, bool one_token_call, float* out) {
    static const bool avx512 = std::strcmp(matmul_isa(), "avx512") == 0;
    (avx512 ? attention_head_avx512 : attention_head_ref)(q, k_cache, v_cache, n_positions, n_head, n_head_kv, head_dim, h,
                                                          one_token_call, out);
}

}  // namespace mome
