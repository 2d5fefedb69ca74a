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
    // v[j] = column j of the 16 x 16 block whose rows are v[0..16): pairs of rows interleaved,
    // then 4-element groups within each 128-bit lane, then the lanes across registers.
    static void transpose16(V v[16]) {
        V t[16], u[16];
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);      // per lane: a0 b0 a1 b1
            t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);  // a2 b2 a3 b3
        }
        for (int g = 0; g < 4; ++g) {  // rows 4g..4g+3: u[4g + m] holds element m of each lane
            const V* q = t + 4 * g;
            u[4 * g + 0] = _mm512_shuffle_ps(q[0], q[2], 0x44);
            u[4 * g + 1] = _mm512_shuffle_ps(q[0], q[2], 0xee);
            u[4 * g + 2] = _mm512_shuffle_ps(q[1], q[3], 0x44);
            u[4 * g + 3] = _mm512_shuffle_ps(q[1], q[3], 0xee);
        }
        for (int m = 0; m < 4; ++m) {  // column 4L + m: lane L of u[m], u[4 + m], u[8 + m], u[12 + m]
            const V x0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88), x1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
            const V y0 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88), y1 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
            v[m] = _mm512_shuffle_f32x4(x0, y0, 0x88);
            v[4 + m] = _mm512_shuffle_f32x4(x1, y1, 0x88);
            v[8 + m] = _mm512_shuffle_f32x4(x0, y0, 0xdd);
            v[12 + m] = _mm512_shuffle_f32x4(x1, y1, 0xdd);
        }
    }
    static uint32_t above(const float* p, float threshold) {
        const __m512 x = _mm512_loadu_ps(p);
        const __m512i exponent = _mm512_set1_epi32(0x7f800000);
        const __mmask16 special = _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_castps_si512(x), exponent), exponent);
        return _mm512_cmp_ps_mask(x, _mm512_set1_ps(threshold), _CMP_GT_OQ) | special;
    }
    // Round to nearest even, through the hardware's F16 conversions.
    static V round_f16(V x) { return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)); }
    // float_to_bf16's integer rounding (NaN kept quiet), so subnormals round as in the scalar code.
    static V round_bf16(V x) {
        const __m512i bits = _mm512_castps_si512(x), high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
        const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
        const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd));
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        const __m512i quiet = _mm512_or_si512(bits, _mm512_set1_epi32(0x00400000));
        return _mm512_castsi512_ps(_mm512_and_si512(_mm512_mask_blend_epi32(nan, rounded, quiet), high));
    }
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
int64_t find_above_avx512(const float* s, int64_t n, float threshold) { return find_above_impl<Vec>(s, n, threshold); }
void round_activations_avx512(mome_tensor_type type, const float* src, float* dst, int64_t n) {
    round_activations_impl<Vec>(type, src, dst, n);
}
}  // namespace mome
