// One quantized matmul per instruction set: rows [r0, r1) of Y = X * W^T over activations
// already quantized and unpacked (see quant_kernels.h), token t summed in the order of
// kernels[t]; quant_matmul.cpp picks one.
#pragma once

#include <cstdint>
#include <vector>

#include "quant/quant.h"
#include "quant/quant_unpacked.h"

namespace mome {

using QuantRowsFn = void (*)(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                             const std::vector<UnpackedRow>& acts, const std::vector<QuantKernel>& kernels, float* Y, int64_t r0, int64_t r1);

void quant_rows_avx512(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                       const std::vector<UnpackedRow>& acts, const std::vector<QuantKernel>& kernels, float* Y, int64_t r0, int64_t r1);
void quant_rows_avx2(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                     const std::vector<UnpackedRow>& acts, const std::vector<QuantKernel>& kernels, float* Y, int64_t r0, int64_t r1);
void quant_rows_portable(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                         const std::vector<UnpackedRow>& acts, const std::vector<QuantKernel>& kernels, float* Y, int64_t r0, int64_t r1);

// The variant matching matmul_isa() (MOME_CPU_ISA lowers both alike).
QuantRowsFn quant_rows_best();

}  // namespace mome
