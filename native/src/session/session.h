// The ABI's opaque session: a model's weights on a backend, a KV cache for several
// sequences, optionally a memory bank, and the forward pass over them (model/llama_graph.h).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "cpu/thread_pool.h"
#include "memory/bank.h"
#include "model/llama_graph.h"
#include "model/llama_weights.h"
#include "model/model.h"

struct mome_session {
    const mome_model* model = nullptr;  // null for a synthetic device session
    mome_llama_config config{};
    int32_t n_ctx = 0;
    int32_t n_seq = 0;
    int n_threads = 1;
    bool use_reference = false;  // cpu-ref backend; the host's routing math uses the reference loops too
    std::unique_ptr<mome::ThreadPool> pool;
    // Declared before what lives in its memory, so that it ends after them.
    std::unique_ptr<mome::Backend> backend;
    mome::LlamaWeights host_weights;  // views of the file (empty for a synthetic device session)
    mome::LlamaWeights weights;       // on the backend's device
    mome::KvCache cache;
    std::vector<int32_t> seq_length;

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
    // On a GPU backend: each memory layer's expert tables, copied when the session was made
    // (later changes to the bank are not seen). On the CPU the bank's own tables are read.
    std::vector<mome::LoraTables> device_tables;
};

namespace mome {

std::unique_ptr<mome_session> create_session(const mome_model& model, const mome_session_params& params);

// A CUDA session over a synthetic model generated on the device (no file, no host weights).
std::unique_ptr<mome_session> create_synthetic_session(const mome_synthetic_params& model, const mome_session_params& params);

// Validates the whole batch, then runs it (see mome_session_decode).
void decode(mome_session& s, const mome_batch& batch, float* logits, uint64_t logits_capacity);

// The memory layers of a session's bank inside its forward pass over `batch` (session_memory.cpp).
std::unique_ptr<MemoryHook> session_memory(mome_session& s, const mome_batch& batch);

}  // namespace mome
