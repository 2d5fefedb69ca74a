// exp(x) as ggml's AVX-512 CPU kernels compute it over vectors of 16 (its ggml_v_expf, after
// ARM's optimized-routines expf): n = round(x / ln 2) by the 1.5 * 2^23 shift, b = x - n ln 2
// in two steps, a degree-5 polynomial in b, times 2^n; within ~2 ulp of the exact value, and
// not always the same float as libm's expf. ggml's SiLU (swiglu) and softmax use it, and a
// last-bit difference in an activation can move it across a rounding step when the next
// matmul quantizes it, so Mome computes the same floats (every step below is one rounding,
// as in the vector code). ggml's AVX2 build rounds one step differently and is not matched.
#pragma once

#include <cmath>

namespace mome {

inline float exp_like_ggml(float x) {
    if (std::isnan(x)) return x;  // as the vector code gives: NaN in, NaN out (and no NaN-to-int cast)
    const float shift = 0x1.8p23f;
    const float n = std::fma(x, 0x1.715476p+0f, shift) - shift;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    if (std::fabs(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    const float u = b * b;
    const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                             std::fma(0x1.ffffecp-1f, b, 1.0f));
    return std::ldexp(j, static_cast<int>(n));
}

// SiLU as ggml's swiglu computes it: x / (1 + exp(-x)).
inline float silu_like_ggml(float x) { return x / (1.0f + exp_like_ggml(-x)); }

}  // namespace mome
