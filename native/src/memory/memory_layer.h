// The memory layer inside the forward pass: route the layer's normalised input to experts
// (per sequence or per token) and compute the grouped-LoRA delta added beside the MLP.
#pragma once

#include <cstdint>
#include <vector>

#include "mome.h"

struct mome_session;

namespace mome {

class ThreadPool;

// Where a batch's tokens go in memory layer `slot`: the tokens grouped into segments that
// share a route (one per sequence, stable; or one per token with per-token routing) as
// `order` with segment `offsets` into it, and each segment's top_k `indices` and `weights`.
// A sequence's route is made from its first batch (the mean of its inputs) and cached in the
// session. u: the batch's normalised inputs [n x n_embd], on the host.
struct BatchRoutes {
    std::vector<int32_t> order;
    std::vector<int64_t> offsets;
    std::vector<int32_t> indices;
    std::vector<float> weights;
};
BatchRoutes route_batch(mome_session& s, int slot, const mome_batch& batch, const float* u, int64_t n);

// delta[n x n_embd] = (alpha / r) * sum_j w_j B_j (A_j u_t) for memory layer `slot`, where
// u = the batch's normalised inputs [n x n_embd]. With per-sequence routing a sequence's
// route is computed from its first batch and cached in the session.
void memory_layer_delta(mome_session& s, int slot, const mome_batch& batch, const float* u, int64_t n, float* delta);

// Router queries [n x key_dim] of inputs u [n x n_embd]: W_q (u - centre).
void project_queries(const mome_bank& bank, int slot, const float* u, int64_t n, float* q, ThreadPool& pool, bool reference);

// Routes projected queries [n x key_dim] through memory layer `slot` of a bank.
void route_bank(const mome_bank& bank, int slot, const float* queries, int64_t n, int32_t* indices, float* weights,
                int n_threads);

}  // namespace mome
