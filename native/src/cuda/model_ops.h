// The frozen Llama layer's own kernels on CUDA (the dense projections go to cuBLAS): each
// computes what the CPU reference op in cpu/ops.h computes, over device buffers, queued on
// `stream`. Checked against those references by tests/native/backend_ops.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/tensor.h"
#include "mome.h"

namespace mome {

// x[t] = row tokens[t] of the embedding table, as F32.
void cuda_embed(const Tensor& table, const int32_t* tokens, int64_t n, float* x, cudaStream_t stream);

// x += y over n elements; x *= s.
void cuda_add(float* x, const float* y, int64_t n, cudaStream_t stream);
void cuda_scale(float* x, float s, int64_t n, cudaStream_t stream);

// out[i] = x[rows[i]] (gather) and out[rows[i]] = x[i] (scatter), for rows of d floats.
void cuda_gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out, cudaStream_t stream);
void cuda_scatter_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out, cudaStream_t stream);

// The index of each row's largest value (lowest index on ties), for n rows of d.
void cuda_argmax_rows(const float* x, int64_t n, int64_t d, int32_t* out, cudaStream_t stream);

// out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight, for `rows` rows of d.
void cuda_rms_norm(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* out, cudaStream_t stream);

// RoPE, NORM pairing, in place: row r (n_heads x head_dim) at position pos[r]. Angles by the
// recurrence ggml uses (theta_i = pos * base^(-2/n_rot) ... multiplied step by step), with
// optional per-pair factors (Llama 3 scaling; device pointer or null).
struct CudaRope {
    int64_t n_rot;
    float freq_base, freq_scale;
    const float* freq_factors;
};
void cuda_rope_norm(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const CudaRope& rope,
                    cudaStream_t stream);

// out = silu(gate) * up over n elements.
void cuda_swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

// Causal attention of n_queries query rows (each n_head x head_dim) over KV caches of
// sequences (each seq_positions x n_head_kv x head_dim, one after another): query t reads
// sequence seq_ids[t]'s cache (seq_ids null: sequence 0) and sees its positions
// 0 .. visible[t]-1 (at most max_positions). GQA: query head h reads KV head
// h / (n_head / n_head_kv). Scale 1/sqrt(head_dim).
void cuda_attention(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, int64_t seq_positions,
                    const int32_t* visible, int64_t n_queries, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t max_positions,
                    float* out, cudaStream_t stream);

// The most positions cuda_attention can attend to on the current device.
int64_t cuda_attention_max_positions();

// x [n] F32 rounded to F16 or BF16 (`type`) into out [n] of that type.
void cuda_round(const float* x, int64_t n, mome_tensor_type type, void* out, cudaStream_t stream);

// The cuBLAS product both directions of a projection use, column-major: C [m x n] = op(W) B
// (+ C when `accumulate`), W in its stored type with leading dimension ldw (op: transposed
// or not), B [k x n] F32 rounded to W's type first for F16/BF16, F32 accumulation.
void cuda_gemm(const void* w, mome_tensor_type type, bool transpose_w, int64_t m, int64_t n, int64_t k, int64_t ldw, const float* b,
               bool accumulate, float* c, cudaStream_t stream);

// Y [n x rows] = X [n x cols] W^T with W [rows x cols] in F32, F16 or BF16 (X rounded to W's
// type first, as the CPU backend and ggml do), through cuBLAS with F32 accumulation.
void cuda_matmul(const void* w, mome_tensor_type type, int64_t rows, int64_t cols, const float* x, int64_t n, float* y,
                 cudaStream_t stream);

}  // namespace mome
