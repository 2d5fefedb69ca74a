// Block-quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) computed as ggml's
// CPU backend computes them: the activations are quantized per block (to Q8_0, Q8_1 or
// Q8_K, the type ggml pairs with the weight type), each block's integer dot product is scaled
// by the two block scales, and the blocks are summed in order. Formats: quant_blocks.h.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mome {

class ThreadPool;

// True for the weight types above.
bool is_quantized_type(uint32_t type);

// The activation type ggml's vec_dot pairs with a weight type: Q8_0 for Q4_0/Q5_0/Q8_0,
// Q8_1 for Q4_1/Q5_1, Q8_K for the k-quants.
uint32_t activation_type_for(uint32_t weight_type);

// Bytes of a row of n elements (n a multiple of the type's block size).
int64_t quant_row_bytes(uint32_t type, int64_t n);

// dequantize.cpp: row of n elements of a weight type (or Q8_0/Q8_1/Q8_K) -> F32.
void dequantize_row(uint32_t type, const uint8_t* src, int64_t n, float* dst);

// quantize_activations.cpp: x[0..n) -> blocks of act_type (Q8_0, Q8_1 or Q8_K), rounding
// as ggml's x86 build does.
void quantize_activation_row(uint32_t act_type, const float* x, int64_t n, uint8_t* dst);

// quantize_weights.cpp: x[0..n) -> Q8_0 or Q4_0 blocks, rounding as llama.cpp's quantizer
// does without an importance matrix (the same bytes).
void quantize_weight_row(uint32_t type, const float* x, int64_t n, uint8_t* dst);

// The ggml x86 kernel that computes an output of a quantized matmul, which fixes the order
// its floats are summed in (quant_dot_ref.cpp spells out each order):
//  - vec_dot: ggml_vec_dot_<type>_q8_* in its AVX2 form, for every matrix ggml does not repack;
//  - gemv, gemm: ggml's kernels over rows repacked into 8-row interleaved blocks, which it does
//    for Q4_0 and Q4_K matrices whose row count is a multiple of 8. A matmul of n tokens sends
//    its first n - n % 4 tokens to the gemm, the rest one by one to the gemv.
enum class QuantKernel : uint8_t { vec_dot, gemv, gemm };

// The kernel for token `token` of a matmul of n_tokens tokens by a weight of `rows` rows.
QuantKernel quant_kernel_for(uint32_t weight_type, int64_t rows, int64_t token, int64_t n_tokens);

// Each token's kernel when the n_tokens tokens of a batch came as separate calls: tokens
// [0, calls[0]) as one matmul, the next calls[1] as another, ... (empty: one call of all).
std::vector<QuantKernel> quant_kernels_for(uint32_t weight_type, int64_t rows, int64_t n_tokens, const std::vector<int64_t>& calls);

// quant_dot_ref.cpp: dot of one weight row (n elements) with one activation row already
// quantized to activation_type_for(weight_type), summed in the order of `kernel`.
float quant_dot_ref(uint32_t weight_type, QuantKernel kernel, const uint8_t* w, const uint8_t* act, int64_t n);

// quant_matmul.cpp: Y[t][r] = dot(W row r, X row t) with the activations quantized first.
// The reference loops block by block; the fast path unpacks each weight row once for all
// tokens, runs the widest kernel this CPU has, and spreads rows over the pool.
// Each token is summed as quant_kernels_for(..., calls) says.
void quant_matmul_ref(const Tensor& W, const float* X, int64_t n_tokens, float* Y, const std::vector<int64_t>& calls = {});
void quant_matmul_fast(const Tensor& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool, const std::vector<int64_t>& calls = {});

// Row `row` of a quantized matrix as F32 (the embedding lookup, the backward's W^T dY).
void dequantize_matrix_row(const Tensor& W, int64_t row, float* out);

}  // namespace mome
