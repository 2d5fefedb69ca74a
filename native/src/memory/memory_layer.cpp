#include "memory/memory_layer.h"

#include <vector>

#include "core/abi_struct.h"
#include "core/error.h"
#include "cpu/ops.h"
#include "memory/bank.h"

namespace mome {

LoraTables bank_tables(const mome_bank& bank, int slot) {
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

void apply_memory_delta(Backend& be, const mome_bank& bank, const LoraTables& tables, const BatchRoutes& r, const float* u, int64_t n,
                        float* delta) {
    const mome_bank_params& p = bank.params;
    const int64_t d = bank.model->config.n_embd;
    LoraBatch lb;
    lb.top_k = p.top_k;
    lb.scale = p.alpha / static_cast<float>(p.rank);
    lb.n_tokens = n;
    lb.n_segments = static_cast<int64_t>(r.offsets.size()) - 1;
    // Checked on the host, where the route is, whatever the device (u is only tested for null).
    {
        LoraBatch host = lb;
        host.u = u, host.segment_offsets = r.offsets.data(), host.indices = r.indices.data(), host.weights = r.weights.data();
        check_lora_batch(tables, host);
    }
    const Buffer order = upload(be, r.order), offsets = upload(be, r.offsets), indices = upload(be, r.indices),
                 weights = upload(be, r.weights);
    Buffer grouped = floats(be, n * d), grouped_delta = floats(be, n * d, true);
    be.gather_rows(u, order.as<int32_t>(), n, d, grouped.as());
    lb.u = grouped.as(), lb.segment_offsets = offsets.as<int64_t>(), lb.indices = indices.as<int32_t>(), lb.weights = weights.as();
    be.lora_apply(tables, lb, grouped_delta.as());
    be.scatter_rows(grouped_delta.as(), order.as<int32_t>(), n, d, delta);
}

void project_queries(const mome_bank& bank, int slot, const float* u, int64_t n, float* q, ThreadPool& pool, bool reference) {
    const MemoryLayer& m = bank.layers[static_cast<size_t>(slot)];
    const int64_t d = bank.model->config.n_embd;
    std::vector<float> centred(u, u + n * d);
    const auto* centre = reinterpret_cast<const float*>(m.centre.data);
    for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < d; ++i) centred[static_cast<size_t>(t * d + i)] -= centre[i];
    const Tensor wq{m.wq.data, MOME_TENSOR_TYPE_F32, bank.params.key_dim, d};
    if (reference) matmul_ref(wq, centred.data(), n, q);
    else matmul_fast(wq, centred.data(), n, q, pool);
}

void route_bank(const mome_bank& bank, int slot, const float* queries, int64_t n, int32_t* indices, float* weights,
                int n_threads) {
    const mome_bank_params& p = bank.params;
    const MemoryLayer& m = bank.layers[static_cast<size_t>(slot)];
    mome_router_desc desc = abi_struct<mome_router_desc>();
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

}  // namespace mome
