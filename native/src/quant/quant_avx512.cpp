// The quantized matmul kernels built for avx512 (compiler flags in native/CMakeLists.txt).
#include <immintrin.h>

#include "quant/quant_kernels.h"
#include "quant/quant_variants.h"

namespace {
// Lane m = sum of w[i] a[i] over bytes 4m..4m+3: |w| times a with w's sign, multiplied and
// added in pairs to 16 bits (at most 2 x 128 x 127, no saturation), then pairs to 32 bits.
struct SimdLanes {
    static void lane_sums(const int8_t* w, const int8_t* a, int32_t out[8]) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
        const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
        const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(av, wv));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    }
};
}  // namespace

namespace mome {
void quant_rows_avx512(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                     const std::vector<UnpackedRow>& acts, float* Y, int64_t r0, int64_t r1) {
    quant_rows_impl<SimdLanes>(type, W, row_bytes, rows, cols, acts, Y, r0, r1);
}
}  // namespace mome
