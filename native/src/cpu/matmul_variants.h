// One matmul per instruction set: rows [r0, r1) of Y = X * W^T (see matmul_kernels.h).
#pragma once

#include "core/tensor.h"

namespace mome {

void matmul_rows_avx512(const Tensor& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1);
void matmul_rows_avx2(const Tensor& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1);
void matmul_rows_portable(const Tensor& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1);

// y[0..W.cols) += a * row `row` of W, per instruction set.
void axpy_row_avx512(const Tensor& W, int64_t row, float a, float* y);
void axpy_row_avx2(const Tensor& W, int64_t row, float a, float* y);
void axpy_row_portable(const Tensor& W, int64_t row, float a, float* y);

// S[q][j] = dot(Q[q], K[j]) for every key (row) of K and query q < nq, per instruction set;
// efficient for batches of queries (the router's flat scores).
void score_keys_avx512(const Tensor& K, const float* Q, int64_t nq, float* S);
void score_keys_avx2(const Tensor& K, const float* Q, int64_t nq, float* S);
void score_keys_portable(const Tensor& K, const float* Q, int64_t nq, float* S);

// dX[t][c] += sum_r dY[t][r] W[r][c] (F32, F16 or BF16 W) for tokens [t0, t1) and columns
// [c0, c1), per instruction set: the input gradient of Y = X W^T.
void backward_input_block_avx512(const Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1);
void backward_input_block_avx2(const Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1);
void backward_input_block_portable(const Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1);

// dst[0..n) = src[0..n) rounded for an F16 or BF16 weight exactly as
// round_activations_like_weights rounds it (ops.h), per instruction set.
void round_activations_avx512(mome_tensor_type type, const float* src, float* dst, int64_t n);
void round_activations_avx2(mome_tensor_type type, const float* src, float* dst, int64_t n);
void round_activations_portable(mome_tensor_type type, const float* src, float* dst, int64_t n);

// The first i in [0, n) with s[i] > threshold or s[i] not finite, n if there is none, per
// instruction set: the router's scan of a block of scores against its k-th best so far.
int64_t find_above_avx512(const float* s, int64_t n, float threshold);
int64_t find_above_avx2(const float* s, int64_t n, float threshold);
int64_t find_above_portable(const float* s, int64_t n, float threshold);

// The variant this CPU runs (as matmul_isa() names it).
using MatmulRowsFn = void (*)(const Tensor&, const float*, int64_t, float*, int64_t, int64_t);
using AxpyRowFn = void (*)(const Tensor&, int64_t, float, float*);
using ScoreKeysFn = void (*)(const Tensor&, const float*, int64_t, float*);
using BackwardInputFn = void (*)(const Tensor&, const float*, float*, int64_t, int64_t, int64_t, int64_t);
MatmulRowsFn matmul_rows_best();
AxpyRowFn axpy_row_best();
ScoreKeysFn score_keys_best();
BackwardInputFn backward_input_block_best();
using FindAboveFn = int64_t (*)(const float*, int64_t, float);
FindAboveFn find_above_best();

// The best variant this CPU runs ("avx512", "avx2" or "portable"); MOME_CPU_ISA can lower it.
const char* matmul_isa();

}  // namespace mome
