// CPU operators of the Llama forward pass. The *_ref functions are the readable reference
// (plain loops, written to read like the math); fast paths are checked against them.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mome {

class ThreadPool;

// ggml multiplies an F16 (BF16) weight by activations rounded to F16 (BF16); doing the same
// keeps Mome's logits within float rounding of llama.cpp's. Rounds x[0..n) in place.
void round_activations_like_weights(mome_tensor_type weight_type, float* x, int64_t n);

// The same rounding, src into dst (F16/BF16 weight types only), in SIMD over the pool.
void round_activations_fast(mome_tensor_type weight_type, const float* src, float* dst, int64_t n, ThreadPool& pool);

// Y[t][r] = sum_k X[t][k] * W[r][k] for t < n_tokens: X is [n_tokens x W.cols], Y is
// [n_tokens x W.rows]. X must already be rounded for W's type. A block-quantized W quantizes
// X itself, as ggml does (quant/quant.h), summing each token as the kernel ggml would give
// it in a matmul of the size of its call (`calls`: the batch's tokens came as calls of these
// sizes; empty: as one call; see quant_kernels_for).
void matmul_ref(const Tensor& W, const float* X, int64_t n_tokens, float* Y, const std::vector<int64_t>& calls = {});

// The same product: SIMD (AVX2/FMA/F16C when the CPU has it), blocked for cache reuse,
// rows spread over the pool's threads.
void matmul_fast(const Tensor& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool, const std::vector<int64_t>& calls = {});

// out = x / sqrt(mean(x^2) + eps) * weight (float squares summed in double, as ggml does).
void rms_norm_ref(const float* x, const float* weight, int64_t d, float eps, float* out);

struct RopeParams {
    int64_t n_rot = 0;        // rotated dimensions per head (even)
    float freq_base = 10000;  // theta_i = pos * freq_scale * base^(-2i/n_rot) / factor_i
    float freq_scale = 1;
    const float* freq_factors = nullptr;  // n_rot/2 values (Llama 3.1 scaling) or null
};

// RoPE, NORM pairing (GGUF llama weights): pairs (2i, 2i+1) inside each head rotate by
// theta_i, computed with the recurrence ggml uses so angles agree to the last bit, and the
// rotation rounded as LLamaSharp 0.30.0's ggml binary rounds it (x0 c - x1 s with x1 s
// rounded first and the rest fused; x0 s + x1 c with x1 c rounded first).
void rope_norm_ref(float* x, int64_t n_heads, int64_t head_dim, int32_t pos, const RopeParams& p);
// rope_norm_ref in its two parts: the cos and sin of the n_rot / 2 angles at `pos`, and the
// rotation of every head of one row by them.
void rope_angles(int32_t pos, const RopeParams& p, float* cos_t, float* sin_t);
void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t, const float* sin_t);
// rope_norm_ref over `rows` rows at positions pos[r], spread over the pool: the angles of
// each distinct position computed once (a batch of sequences repeats its positions).
void rope_fast(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p, ThreadPool& pool);

// Causal attention of one query token over the first n_positions positions of its
// sequence's cache. q: [n_head x head_dim]; k_cache/v_cache: [positions x n_head_kv x
// head_dim]. Query head h reads KV head h / (n_head / n_head_kv). out: [n_head x head_dim].
// Summed as llama.cpp's CPU attention (without flash attention) sums (cpu/sums_like_ggml.h):
// its value sums depend on whether the token came in a call of its own (a decode step).
void attention_ref(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                   int64_t n_head_kv, int64_t head_dim, bool one_token_call, float* out);
// Head h of it (out is the whole [n_head x head_dim] row).
void attention_head_ref(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                        int64_t n_head_kv, int64_t head_dim, int64_t h, bool one_token_call, float* out);

// sum_i a[i] b[i] in double, in four interleaved partial sums (independent additions).
double dot_double(const float* a, const float* b, int64_t n);

// attention_head_ref in AVX-512 registers, bit-identical (only where matmul_isa() is
// "avx512"); attention_head_fast picks it or the reference.
void attention_head_avx512(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                           int64_t n_head_kv, int64_t head_dim, int64_t h, bool one_token_call, float* out);
void attention_head_fast(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                         int64_t n_head_kv, int64_t head_dim, int64_t h, bool one_token_call, float* out);

// out = silu(gate) * up, element-wise.
void swiglu_ref(const float* gate, const float* up, int64_t n, float* out);
// swiglu_ref in AVX-512 registers, bit-identical (only where matmul_isa() is "avx512");
// swiglu_fast picks it or the reference and spreads blocks over the pool.
void swiglu_avx512(const float* gate, const float* up, int64_t n, float* out);
void swiglu_fast(const float* gate, const float* up, int64_t n, float* out, ThreadPool& pool);

// Row `token` of the embedding as F32 (a quantized row dequantized, as ggml's get_rows does).
void embed_ref(const Tensor& embedding, int32_t token, float* out);

}  // namespace mome
