// The memory layer's math over a bank, for every backend: route a layer's normalised input
// to experts (on the host, by the bank's router and gate) and add the grouped-LoRA delta of
// the routed experts beside the MLP (on the backend). Sessions (session/) and memory tuning
// (memory/tuning.h) both call apply_memory_delta; it is the one copy of that delta.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "mome.h"

struct mome_bank;

namespace mome {

class ThreadPool;

// Tokens grouped into segments that share a route: `order` lists the batch's rows segment by
// segment, `offsets` (n_segments + 1) index into it, and each segment has top_k `indices`
// and `weights` (host arrays).
struct BatchRoutes {
    std::vector<int32_t> order;
    std::vector<int64_t> offsets;
    std::vector<int32_t> indices;
    std::vector<float> weights;
};

// The expert tables of memory layer `slot` as they are in the bank (host views).
LoraTables bank_tables(const mome_bank& bank, int slot);

// delta[t] = (alpha / rank) * sum_j w_j B_j (A_j u_t) over the route of each row's segment:
// u and delta [n x n_embd] and `tables` are on the backend's device; `routes` on the host
// (checked against the tables before anything runs).
void apply_memory_delta(Backend& backend, const mome_bank& bank, const LoraTables& tables, const BatchRoutes& routes,
                        const float* u, int64_t n, float* delta);

// Router queries [n x key_dim] of inputs u [n x n_embd] (host): W_q (u - centre).
void project_queries(const mome_bank& bank, int slot, const float* u, int64_t n, float* q, ThreadPool& pool, bool reference);

// Routes projected queries [n x key_dim] through memory layer `slot` of a bank.
void route_bank(const mome_bank& bank, int slot, const float* queries, int64_t n, int32_t* indices, float* weights,
                int n_threads);

}  // namespace mome
