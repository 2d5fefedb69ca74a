// The matmul kernels for AVX2 with FMA and F16C (built with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include "cpu/matmul_kernels.h"
#include "cpu/matmul_variants.h"

namespace {
struct Vec {
    using V = __m256;
    static constexpr int64_t kWidth = 8;
    static constexpr int kTokens = 2;  // 8 accumulators + 2 tokens + 1 weight of 16 registers
    static constexpr int kDecodeRows = 4;  // 8 accumulators + 2 of x + 1 weight
    static V broadcast(float a) { return _mm256_set1_ps(a); }
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static V load_bf16(const uint16_t* p) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
    static V fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static float hsum(V v) {
        const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
    }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static uint32_t above(const float* p, float threshold) {  // NaN compares unordered-true, inf as itself
        const __m256 x = _mm256_loadu_ps(p), inf = _mm256_set1_ps(INFINITY);
        const __m256 special = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x), inf, _CMP_NLT_UQ);
        return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(x, _mm256_set1_ps(threshold), _CMP_GT_OQ), special)));
    }
    static V round_f16(V x) { return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
    static V round_bf16(V x) {  // float_to_bf16's integer rounding; NaN kept quiet
        const __m256i bits = _mm256_castps_si256(x), high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
        const __m256i rounded = _mm256_add_epi32(bits, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), odd));
        // abs > 0x7f800000 as signed integers: abs has no sign bit.
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
        const __m256i quiet = _mm256_or_si256(bits, _mm256_set1_epi32(0x00400000));
        return _mm256_castsi256_ps(_mm256_and_si256(_mm256_blendv_epi8(rounded, quiet, nan), high));
    }
};
}  // namespace

namespace mome {
void matmul_rows_avx2(const Tensor& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1) {
    matmul_rows_impl<Vec>(W, X, n, Y, r0, r1);
}
void axpy_row_avx2(const Tensor& W, int64_t row, float a, float* y) { axpy_row_impl<Vec>(W, row, a, y); }
void score_keys_avx2(const Tensor& K, const float* Q, int64_t nq, float* S) { score_keys_impl<Vec>(K, Q, nq, S); }
void backward_input_block_avx2(const Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1) {
    backward_input_block_impl<Vec>(W, dY, dX, t0, t1, c0, c1);
}
int64_t find_above_avx2(const float* s, int64_t n, float threshold) { return find_above_impl<Vec>(s, n, threshold); }
void round_activations_avx2(mome_tensor_type type, const float* src, float* dst, int64_t n) {
    round_activations_impl<Vec>(type, src, dst, n);
}
}  // namespace mome
