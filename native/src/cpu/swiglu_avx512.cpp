// swiglu_ref (cpu/ops_ref.cpp) 16 lanes at a time, bit-identical: exp_like_ggml's steps
// (cpu/exp_like_ggml.h) as the same roundings in registers, its ldexp as vscalefps (one
// rounding of j * 2^n, subnormal results included), then x / (1 + e) * up. Compiled with
// -ffp-contract=off (native/CMakeLists.txt): every fused multiply-add here is written out.
#include <immintrin.h>

#include "cpu/exp_like_ggml.h"
#include "cpu/ops.h"

namespace mome {

namespace {

// exp_like_ggml of each lane.
__m512 exp_lanes(__m512 x) {
    const __m512 shift = _mm512_set1_ps(0x1.8p23f);
    const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), shift), shift);
    const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
    const __m512 u = _mm512_mul_ps(b, b);
    const __m512 j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                        _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
        u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
    __m512 e = _mm512_scalef_ps(j, n);
    // |n| > 192: 0 below, infinity above; NaN in, the same NaN out.
    const __m512 abs_n = _mm512_abs_ps(n);
    const __mmask16 far = _mm512_cmp_ps_mask(abs_n, _mm512_set1_ps(192.0f), _CMP_GT_OQ);
    const __mmask16 above = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_GT_OQ);
    e = _mm512_mask_blend_ps(far, e, _mm512_mask_blend_ps(above, _mm512_setzero_ps(), _mm512_set1_ps(INFINITY)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), e, x);
}

}  // namespace

void swiglu_avx512(const float* gate, const float* up, int64_t n, float* out) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(gate + i);
        const __m512 e = exp_lanes(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), sign)));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_loadu_ps(up + i)));
    }
    if (i < n) swiglu_ref(gate + i, up + i, n - i, out + i);
}

}  // namespace mome
