// The quantized matmul kernels built for avx2 (compiler flags in native/CMakeLists.txt).
#include "quant/quant_kernels.h"
#include "quant/quant_kernels_x86.h"
#include "quant/quant_variants.h"

namespace mome {
void quant_rows_avx2(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                     const std::vector<UnpackedRow>& acts, const std::vector<QuantKernel>& kernels, float* Y, int64_t r0, int64_t r1) {
    quant_rows_impl<X86Dot>(type, W, row_bytes, rows, cols, acts, kernels, Y, r0, r1);
}
}  // namespace mome
