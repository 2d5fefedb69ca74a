// The matmul kernels for AVX-512F (built with -mavx512f -mfma -mf16c).
#include <immintrin.h>

#include "cpu/matmul_kernels.h"
#include "cpu/matmul_variants.h"

namespace {
struct Vec {
    using V = __m512;
    static constexpr int64_t kWidth = 16;
    static constexpr int kTokens = 4;  // 16 accumulators + 4 tokens + 1 weight of 32 registers
    static constexpr int kDecodeRows = 8;  // 16 accumulators + 2 of x + 1 weight
    static V broadcast(float a) { return _mm512_set1_ps(a); }
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static V load_bf16(const uint16_t* p) {
        const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
    }
    static V fma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static float hsum(V v) { return _mm512_reduce_add_ps(v); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
};
}  // namespace

namespace mome {
void matmul_rows_avx512(const Tensor& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1) {
    matmul_rows_impl<Vec>(W, X, n, Y, r0, r1);
}
void axpy_row_avx512(const Tensor& W, int64_t row, float a, float* y) { axpy_row_impl<Vec>(W, row, a, y); }
void score_keys_avx512(const Tensor& K, const float* Q, int64_t nq, float* S) { score_keys_impl<Vec>(K, Q, nq, S); }
void backward_input_block_avx512(const Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1) {
    backward_input_block_impl<Vec>(W, dY, dX, t0, t1, c0, c1);
}
}  // namespace mome
