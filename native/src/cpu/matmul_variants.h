// One matmul per instruction set: rows [r0, r1) of Y = X * W^T (see matmul_kernels.h).
#pragma once

#include "model/llama_weights.h"

namespace mome {

void matmul_rows_avx512(const Matrix& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1);
void matmul_rows_avx2(const Matrix& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1);
void matmul_rows_portable(const Matrix& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1);

// The best variant this CPU runs ("avx512", "avx2" or "portable"); MOME_CPU_ISA can lower it.
const char* matmul_isa();

}  // namespace mome
