// Grouped LoRA: every token adds the low-rank updates of its routed experts,
// out[t] += scale * sum_j w_j * B_e (A_e u_t). Tokens are grouped in segments that share
// their experts (one per sequence: gather once, reuse for every token) or one per token.
#pragma once

#include <cstdint>

#include "mome.h"

namespace mome {

class ThreadPool;

struct LoraTables {
    mome_tensor_type type = MOME_TENSOR_TYPE_F32;
    int64_t n_experts = 0;
    int64_t dim = 0;
    int32_t rank = 0;
    const uint8_t* a = nullptr;  // [n_experts x rank x dim]
    const uint8_t* b = nullptr;  // [n_experts x rank x dim], B_e transposed
};

struct LoraBatch {
    const float* u = nullptr;  // [n_tokens x dim]
    int64_t n_tokens = 0;
    const int64_t* segment_offsets = nullptr;  // n_segments + 1, from 0 to n_tokens
    int64_t n_segments = 0;
    const int32_t* indices = nullptr;  // [n_segments x top_k]
    const float* weights = nullptr;    // [n_segments x top_k]
    int32_t top_k = 0;
    float scale = 1;
};

// The tables a descriptor names, after checking its type and sizes.
LoraTables lora_tables_of(const mome_lora_desc& e);

// Pointers present, counts >= 1, finite scale; reads no data.
void check_lora_shape(const LoraBatch& b);

// check_lora_shape, then throws INVALID_ARGUMENT / OUT_OF_RANGE naming the first bad offset,
// index or weight.
void check_lora_batch(const LoraTables& t, const LoraBatch& b);

// The plain loop, expert by expert, token by token (double accumulation).
void lora_apply_ref(const LoraTables& t, const LoraBatch& b, float* out);

// Each segment reads its experts' rows once for all its tokens, in their storage type, with
// the SIMD matmul and axpy kernels, the rows of the next experts prefetched; segments spread
// over the pool. Checked against lora_apply_ref.
void lora_apply(const LoraTables& t, const LoraBatch& b, float* out, ThreadPool& pool);

// dA and dB (F32 tables, accumulated) of the update above for the output gradient dout:
// for each route entry (segment, expert e, weight w) z = A_e u and dz = w B_e^T dout over
// the segment's tokens with the SIMD matmul, then dB_e += w z dout and dA_e += dz u with the
// SIMD axpy. The distinct experts spread over the pool (each owns its rows of dA and dB, so
// no two threads write one row). Checked against the reference lora_backward (ops_backward.h).
void lora_backward_fast(const LoraTables& t, const LoraBatch& b, const float* dout, float* dA, float* dB, ThreadPool& pool);

}  // namespace mome
