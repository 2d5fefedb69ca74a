// Backward of the frozen layer's ops on CUDA (activation gradients, as memory tuning needs),
// each computing what its CPU reference in cpu/ops_backward.h computes, over device buffers
// on `stream`. Checked against those references by tests/native/backend_ops.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/model_ops.h"
#include "mome.h"

namespace mome {

// dx (overwritten) of y = x / sqrt(mean(x^2) + eps) * weight, for `rows` rows of d.
void cuda_rms_norm_backward(const float* x, const float* weight, const float* dy, int64_t rows, int64_t d, float eps, float* dx,
                            cudaStream_t stream);

// dX [n x cols] += dY [n x rows] W with W [rows x cols] (F16/BF16 weights: dY rounded to
// their type for cuBLAS, F32 accumulation).
void cuda_matmul_backward_input(const void* w, mome_tensor_type type, int64_t rows, int64_t cols, const float* dy, int64_t n, float* dx,
                                cudaStream_t stream);

// dgate, dup (overwritten) of out = silu(gate) * up.
void cuda_swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup, cudaStream_t stream);

// RoPE's backward: rotates the gradient rows by the opposite angles, in place.
void cuda_rope_norm_backward(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const CudaRope& rope,
                             cudaStream_t stream);

// Backward of cuda_attention for one sequence (seq_ids null): dq (overwritten) and dk, dv
// accumulated (atomically) into [positions x n_head_kv x head_dim] buffers.
void cuda_attention_backward(const float* q, const float* k_cache, const float* v_cache, const int32_t* visible, int64_t n_queries,
                             int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t max_positions, const float* dout, float* dq,
                             float* dk, float* dv, cudaStream_t stream);

// Per row of logits [n x n_vocab]: loss[t] = cross-entropy against targets[t], and
// dlogits = softmax - onehot (overwritten).
void cuda_cross_entropy_backward(const float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float* dlogits, float* loss,
                                 cudaStream_t stream);

// Grouped LoRA backward over one segment of n tokens that share k experts, whose F32 tables
// a, b [k x rank x d] are given in route order: with z = A_j u and out += scale w_j B_j z,
// dA and dB (same layouts, overwritten).
void cuda_lora_backward(const float* a, const float* b, const float* weights, int64_t k, int64_t rank, int64_t d, float scale,
                        const float* u, const float* dout, int64_t n, float* da, float* db, cudaStream_t stream);

// Weight gradients (fine-tuning): dW [rows x cols] += dY^T X through cuBLAS (F32);
// dweight [d] += sum over rows of dy * x / rms(x); dtable[tokens[t]] += dx[t] (atomically).
void cuda_matmul_backward_weight(const float* dy, const float* x, int64_t n, int64_t rows, int64_t cols, float* dw, cudaStream_t stream);
void cuda_rms_norm_backward_weight(const float* x, const float* dy, int64_t rows, int64_t d, float eps, float* dweight, cudaStream_t stream);
void cuda_embed_backward(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dtable, cudaStream_t stream);

}  // namespace mome
