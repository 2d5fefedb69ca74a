// The memory layers of a session's bank inside its forward pass: each batch's routes are made
// on the host from the layer's normalised inputs (per token, or per sequence from its first
// batch and cached in the session), then the delta runs on the session's backend.
#include <algorithm>
#include <numeric>
#include <vector>

#include "memory/gate.h"
#include "memory/memory_layer.h"
#include "session/session.h"

namespace mome {

namespace {

void queries_of(mome_session& s, int slot, const float* u, int64_t n, std::vector<float>& q) {
    q.resize(static_cast<size_t>(n * s.bank->params.key_dim));
    project_queries(*s.bank, slot, u, n, q.data(), *s.pool, s.use_reference);
}

void route_into(mome_session& s, int slot, const std::vector<float>& q, int64_t n, int32_t* indices, float* weights) {
    route_bank(*s.bank, slot, q.data(), n, indices, weights, s.n_threads);
    apply_gate(*s.bank, slot, q.data(), n, weights, s.n_threads);
}

// Where a batch's tokens go in memory layer `slot` (u: the batch's normalised inputs on the host).
BatchRoutes route_batch(mome_session& s, int slot, const mome_batch& batch, const float* u, int64_t n) {
    const mome_bank_params& p = s.bank->params;
    const int64_t d = s.config.n_embd, k = p.top_k;
    BatchRoutes r;
    r.order.resize(static_cast<size_t>(n));
    std::iota(r.order.begin(), r.order.end(), 0);
    r.offsets.push_back(0);
    std::vector<float> q;
    if (p.routing == MOME_ROUTING_MODE_TOKEN) {
        queries_of(s, slot, u, n, q);
        r.indices.resize(static_cast<size_t>(n * k));
        r.weights.resize(static_cast<size_t>(n * k));
        route_into(s, slot, q, n, r.indices.data(), r.weights.data());
        for (int64_t t = 1; t <= n; ++t) r.offsets.push_back(t);
        return r;
    }
    std::stable_sort(r.order.begin(), r.order.end(), [&](int32_t a, int32_t b) { return batch.seq_ids[a] < batch.seq_ids[b]; });
    for (int64_t i = 0; i < n;) {
        const int32_t seq = batch.seq_ids[r.order[static_cast<size_t>(i)]];
        int64_t j = i;
        std::vector<float> mean(static_cast<size_t>(d), 0.0f);
        for (; j < n && batch.seq_ids[r.order[static_cast<size_t>(j)]] == seq; ++j) {
            const float* row = u + r.order[static_cast<size_t>(j)] * d;
            for (int64_t e = 0; e < d; ++e) mean[static_cast<size_t>(e)] += row[e];
        }
        mome_session::Route& route = s.routes[static_cast<size_t>(seq)][static_cast<size_t>(slot)];
        if (!route.valid) {
            for (float& m : mean) m /= static_cast<float>(j - i);
            queries_of(s, slot, mean.data(), 1, q);
            route.indices.resize(static_cast<size_t>(k));
            route.weights.resize(static_cast<size_t>(k));
            route_into(s, slot, q, 1, route.indices.data(), route.weights.data());
            route.valid = true;
        }
        r.indices.insert(r.indices.end(), route.indices.begin(), route.indices.end());
        r.weights.insert(r.weights.end(), route.weights.begin(), route.weights.end());
        r.offsets.push_back(j);
        i = j;
    }
    return r;
}

class SessionMemory final : public MemoryHook {
public:
    SessionMemory(mome_session& s, const mome_batch& batch) : s_(s), batch_(batch) {}

    bool memory_delta(int64_t layer, const float* u, int64_t n, float* delta) override {
        const int slot = s_.bank->slot_of_block(layer);
        if (slot < 0) return false;
        const std::vector<float> host_u = download(*s_.backend, u, n * s_.config.n_embd);
        const BatchRoutes routes = route_batch(s_, slot, batch_, host_u.data(), n);
        const LoraTables tables = s_.device_tables.empty() ? bank_tables(*s_.bank, slot) : s_.device_tables[static_cast<size_t>(slot)];
        apply_memory_delta(*s_.backend, *s_.bank, tables, routes, u, n, delta);
        return true;
    }

private:
    mome_session& s_;
    const mome_batch& batch_;
};

}  // namespace

std::unique_ptr<MemoryHook> session_memory(mome_session& s, const mome_batch& batch) { return std::make_unique<SessionMemory>(s, batch); }

}  // namespace mome
