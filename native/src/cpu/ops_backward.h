// Backward of the forward-pass operators (activation gradients), as memory tuning needs:
// the base model is frozen, so no weight gradients except the experts'. Plain readable
// loops; each is checked against finite differences of an independent double-precision
// forward in tests/native/backward_test.cpp.
#pragma once

#include <cstdint>

#include "cpu/ops.h"
#include "cpu/lora.h"

namespace mome {

class ThreadPool;

// y = x / sqrt(mean(x^2) + eps) * weight  =>  dx (overwritten) from dy.
void rms_norm_backward(const float* x, const float* weight, int64_t d, float eps, const float* dy, float* dx);

// Y = X W^T  =>  dX[t][k] += sum_r dY[t][r] W[r][k]; blocks of tokens and columns over `pool`'s
// threads when given. A quantized W enters dequantized (the straight-through view of its
// integer dot products). The _ref form is the plain loop (the fast form is checked against it).
void matmul_backward_input(const Tensor& W, const float* dY, int64_t n_tokens, float* dX, ThreadPool* pool = nullptr);
void matmul_backward_input_ref(const Tensor& W, const float* dY, int64_t n_tokens, float* dX);

// out = silu(gate) * up  =>  dgate, dup (overwritten).
void swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup);

// RoPE is a rotation: its backward rotates the gradient by the opposite angles (in place).
void rope_norm_backward(float* dx, int64_t n_heads, int64_t head_dim, int32_t pos, const RopeParams& p);
// rope_norm_backward's rotation of one row by the angles rope_angles gives (cpu/ops.h).
void rope_backward_rotate(float* dx, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t, const float* sin_t);
// rope_norm_backward over rows at positions pos[r], as rope_fast (cpu/ops.h) runs the forward.
void rope_backward_fast(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p,
                        ThreadPool& pool);

// Backward of attention_ref for one query over n_positions cached keys/values: dq
// (overwritten), and dk/dv accumulated into [positions x n_head_kv x head_dim] buffers.
void attention_backward(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                        int64_t n_head_kv, int64_t head_dim, const float* dout, float* dq, float* dk, float* dv);
// attention_backward for the query heads of KV heads [kv_begin, kv_end) only: their slices of
// dq, dk and dv, each element summed in the same order (the KV heads' slices are disjoint, so
// the KV heads may run on different threads).
void attention_backward_heads(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                              int64_t n_head_kv, int64_t head_dim, const float* dout, float* dq, float* dk, float* dv, int64_t kv_begin,
                              int64_t kv_end);

// Cross-entropy of one row of logits against `target`: returns the loss and writes
// dlogits = softmax(logits) - onehot(target).
double cross_entropy_backward(const float* logits, int64_t n_vocab, int32_t target, float* dlogits);

// Grouped LoRA backward for F32 expert tables: with z = A_e u and
// out += scale * w * B_e z, accumulates dA (same layout as A) and dB (as B, transposed)
// for every routed expert, and du (may be null) for the inputs.
void lora_backward(const LoraTables& t, const LoraBatch& b, const float* dout, float* dA, float* dB, float* du);

// Weight gradients, for fine-tuning (the frozen base never needs them).
// Y = X W^T  =>  dW[r][k] += sum_t dY[t][r] X[t][k], W [rows x cols].
void matmul_backward_weight(const float* dY, const float* X, int64_t n_tokens, int64_t rows, int64_t cols, float* dW);
// y = x / sqrt(mean(x^2) + eps) * weight  =>  dweight[i] += dy[i] * x[i] / sqrt(mean(x^2) + eps), one row.
void rms_norm_backward_weight(const float* x, int64_t d, float eps, const float* dy, float* dweight);

}  // namespace mome
