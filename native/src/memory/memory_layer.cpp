#include "memory/memory_layer.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "cpu/ops.h"
#include "memory/gate.h"
#include "memory/lora.h"
#include "model/session.h"

namespace mome {

namespace {

LoraTables tables_of(const mome_bank& bank, int slot) {
    const MemoryLayer& m = bank.layers[static_cast<size_t>(slot)];
    LoraTables t;
    t.type = bank.params.weight_type;
    t.n_experts = bank.params.n_experts;
    t.dim = bank.model->config.n_embd;
    t.rank = bank.params.rank;
    t.a = m.a.data;
    t.b = m.b.data;
    return t;
}

void project_queries(mome_session& s, int slot, const float* u, int64_t n, std::vector<float>& q) {
    q.resize(static_cast<size_t>(n * s.bank->params.key_dim));
    project_queries(*s.bank, slot, u, n, q.data(), *s.pool, s.use_reference);
}

}  // namespace

void project_queries(const mome_bank& bank, int slot, const float* u, int64_t n, float* q, ThreadPool& pool, bool reference) {
    const MemoryLayer& m = bank.layers[static_cast<size_t>(slot)];
    const int64_t d = bank.model->config.n_embd;
    std::vector<float> centred(u, u + n * d);
    const auto* centre = reinterpret_cast<const float*>(m.centre.data);
    for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < d; ++i) centred[static_cast<size_t>(t * d + i)] -= centre[i];
    const Matrix wq{m.wq.data, MOME_TENSOR_TYPE_F32, bank.params.key_dim, d};
    if (reference) matmul_ref(wq, centred.data(), n, q);
    else matmul_fast(wq, centred.data(), n, q, pool);
}

void route_bank(const mome_bank& bank, int slot, const float* queries, int64_t n, int32_t* indices, float* weights,
                int n_threads) {
    const mome_bank_params& p = bank.params;
    const MemoryLayer& m = bank.layers[static_cast<size_t>(slot)];
    mome_router_desc desc{};
    desc.kind = p.router;
    desc.key_type = p.weight_type;
    desc.n_experts = p.n_experts;
    desc.key_dim = p.key_dim;
    desc.keys = m.keys.data;
    desc.top_k = p.top_k;
    desc.temperature = p.temperature;
    const mome_status status = mome_route(&desc, queries, n, indices, weights, nullptr, n_threads);
    if (status != MOME_STATUS_OK) fail(status, std::string("memory layer routing: ") + mome_last_error());
}

BatchRoutes route_batch(mome_session& s, int slot, const mome_batch& batch, const float* u, int64_t n) {
    const mome_bank& bank = *s.bank;
    const mome_bank_params& p = bank.params;
    const int64_t d = s.config.n_embd, k = p.top_k;
    BatchRoutes r;
    r.order.resize(static_cast<size_t>(n));
    std::iota(r.order.begin(), r.order.end(), 0);
    r.offsets.push_back(0);
    std::vector<float> q;
    if (p.routing == MOME_ROUTING_MODE_TOKEN) {
        project_queries(s, slot, u, n, q);
        r.indices.resize(static_cast<size_t>(n * k));
        r.weights.resize(static_cast<size_t>(n * k));
        route_bank(bank, slot, q.data(), n, r.indices.data(), r.weights.data(), s.n_threads);
        apply_gate(bank, slot, q.data(), n, r.weights.data(), s.n_threads);
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
            project_queries(s, slot, mean.data(), 1, q);
            route.indices.resize(static_cast<size_t>(k));
            route.weights.resize(static_cast<size_t>(k));
            route_bank(bank, slot, q.data(), 1, route.indices.data(), route.weights.data(), s.n_threads);
            apply_gate(bank, slot, q.data(), 1, route.weights.data(), s.n_threads);
            route.valid = true;
        }
        r.indices.insert(r.indices.end(), route.indices.begin(), route.indices.end());
        r.weights.insert(r.weights.end(), route.weights.begin(), route.weights.end());
        r.offsets.push_back(j);
        i = j;
    }
    return r;
}

void memory_layer_delta(mome_session& s, int slot, const mome_batch& batch, const float* u, int64_t n, float* delta) {
    const mome_bank& bank = *s.bank;
    const mome_bank_params& p = bank.params;
    const int64_t d = s.config.n_embd;
    const BatchRoutes r = route_batch(s, slot, batch, u, n);
    std::vector<float> grouped(static_cast<size_t>(n * d)), grouped_delta(static_cast<size_t>(n * d), 0.0f);
    for (int64_t i = 0; i < n; ++i) std::copy_n(u + r.order[static_cast<size_t>(i)] * d, d, grouped.data() + i * d);
    const LoraTables tables = tables_of(bank, slot);
    LoraBatch lb;
    lb.top_k = p.top_k;
    lb.scale = p.alpha / static_cast<float>(p.rank);
    lb.u = grouped.data(), lb.n_tokens = n, lb.segment_offsets = r.offsets.data();
    lb.n_segments = static_cast<int64_t>(r.offsets.size()) - 1;
    lb.indices = r.indices.data(), lb.weights = r.weights.data();
    check_lora_batch(tables, lb);
    if (s.use_reference) lora_apply_ref(tables, lb, grouped_delta.data());
    else lora_apply(tables, lb, grouped_delta.data(), *s.pool);
    std::fill(delta, delta + n * d, 0.0f);
    for (int64_t i = 0; i < n; ++i) std::copy_n(grouped_delta.data() + i * d, d, delta + r.order[static_cast<size_t>(i)] * d);
}

}  // namespace mome
