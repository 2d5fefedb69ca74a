// The ABI's opaque session: a model's weights, a KV cache for several sequences, and the
// Llama forward pass over them.
#pragma once

#include <memory>
#include <vector>

#include "core/cuda_backend.h"
#include "cpu/thread_pool.h"
#include "memory/bank.h"
#include "model/llama_weights.h"
#include "model/model.h"

struct mome_session {
    const mome_model* model = nullptr;  // null for a synthetic device session
    mome_llama_config config{};
    mome::LlamaWeights weights;
    int32_t n_ctx = 0;
    int32_t n_seq = 0;
    bool use_reference = false;
    std::unique_ptr<mome::ThreadPool> pool;
    std::vector<int32_t> seq_length;
    // Per layer: [n_seq x n_ctx x n_head_kv x head_dim] keys (after RoPE) and values.
    std::vector<std::vector<float>> k_cache, v_cache;

    // The memory bank run inside the model (null: the base model alone), and with
    // per-sequence routing each sequence's route per memory layer, computed from its
    // first batch (the question) and reused until the sequence is cleared.
    const mome_bank* bank = nullptr;
    struct Route {
        bool valid = false;
        std::vector<int32_t> indices;
        std::vector<float> weights;
    };
    std::vector<std::vector<Route>> routes;  // [n_seq][memory layer slot]
    int n_threads = 1;

    // Set when the session runs on a CUDA device (then the host KV cache stays empty).
    std::unique_ptr<mome::CudaSession, void (*)(mome::CudaSession*)> cuda{nullptr, mome::destroy_cuda_session};
};

namespace mome {

std::unique_ptr<mome_session> create_session(const mome_model& model, const mome_session_params& params);

// A CUDA session over a synthetic model generated on the device (no file, no host weights).
std::unique_ptr<mome_session> create_synthetic_session(const mome_synthetic_params& model, const mome_session_params& params);

// Validates the whole batch, then runs it (see mome_session_decode).
void decode(mome_session& s, const mome_batch& batch, float* logits, uint64_t logits_capacity);

}  // namespace mome
