#include "memory/gate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "core/abi_struct.h"
#include "core/error.h"
#include "memory/memory_layer.h"
#include "memory/tuning.h"

namespace mome {

namespace {

const MemoryLayer& layer_of(const mome_bank& bank, int slot) { return bank.layers[static_cast<size_t>(slot)]; }

int64_t signature_count(const MemoryLayer& l) { return l.gate.shape.empty() ? 0 : l.gate.shape[0]; }

// Unit vector of a query, or false when it is zero.
bool normalised(const float* q, int64_t d, float* out) {
    double norm = 0;
    for (int64_t i = 0; i < d; ++i) norm += static_cast<double>(q[i]) * q[i];
    if (!(norm > 0)) return false;
    const double inv = 1.0 / std::sqrt(norm);
    for (int64_t i = 0; i < d; ++i) out[i] = static_cast<float>(q[i] * inv);
    return true;
}

uint64_t bits_hash(const float* v, int64_t d) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
    const auto* bytes = reinterpret_cast<const uint8_t*>(v);
    for (int64_t i = 0; i < d * 4; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}

// Routing queries of `count` inputs ([count x n_embd]), one each.
std::vector<float> token_queries(const mome_bank& bank, const float* u, int64_t count, ThreadPool& pool) {
    std::vector<float> q(static_cast<size_t>(count * bank.params.key_dim));
    project_queries(bank, 0, u, count, q.data(), pool, false);
    return q;
}

// The routing query of the mean of `count` inputs, summed then divided as route_fact does.
std::vector<float> mean_query(const mome_bank& bank, const float* u, int64_t count, ThreadPool& pool) {
    const int64_t D = bank.model->config.n_embd;
    std::vector<float> mean(static_cast<size_t>(D), 0.0f);
    for (int64_t t = 0; t < count; ++t)
        for (int64_t i = 0; i < D; ++i) mean[static_cast<size_t>(i)] += u[t * D + i];
    for (float& m : mean) m /= static_cast<float>(count);
    return token_queries(bank, mean.data(), 1, pool);
}

}  // namespace

bool gate_is_on(const MemoryLayer& layer) { return layer.gate_threshold > -1.0f; }

void gate_evidence(const mome_bank& bank, int slot, const float* queries, int64_t n, float* evidence, int n_threads) {
    const MemoryLayer& l = layer_of(bank, slot);
    const int64_t d = bank.params.key_dim, count = signature_count(l);
    std::vector<float> unit(static_cast<size_t>(n * d));
    std::vector<char> zero(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) zero[static_cast<size_t>(t)] = !normalised(queries + t * d, d, unit.data() + t * d);
    for (int64_t t = 0; t < n; ++t) evidence[t] = -1.0f;
    if (count == 0) return;
    // The nearest signature by the flat router's exact top-1: its score is cos / sqrt(d).
    mome_router_desc desc = abi_struct<mome_router_desc>();
    desc.kind = MOME_ROUTER_KIND_FLAT;
    desc.key_type = MOME_TENSOR_TYPE_F32;
    desc.n_experts = count;
    desc.key_dim = d;
    desc.keys = l.gate.data;
    desc.top_k = 1;
    desc.temperature = 1.0f;
    std::vector<int32_t> index(static_cast<size_t>(n));
    std::vector<float> weight(static_cast<size_t>(n)), score(static_cast<size_t>(n));
    const mome_status status = mome_route(&desc, unit.data(), n, index.data(), weight.data(), score.data(), n_threads);
    if (status != MOME_STATUS_OK) fail(status, std::string("memory gate: ") + mome_last_error());
    for (int64_t t = 0; t < n; ++t)
        if (!zero[static_cast<size_t>(t)]) evidence[t] = score[static_cast<size_t>(t)] * std::sqrt(static_cast<float>(d));
}

void apply_gate(const mome_bank& bank, int slot, const float* queries, int64_t n, float* weights, int n_threads) {
    const MemoryLayer& l = layer_of(bank, slot);
    if (!gate_is_on(l)) return;
    std::vector<float> evidence(static_cast<size_t>(n));
    gate_evidence(bank, slot, queries, n, evidence.data(), n_threads);
    const int64_t k = bank.params.top_k;
    for (int64_t t = 0; t < n; ++t)
        if (!(evidence[static_cast<size_t>(t)] >= l.gate_threshold)) std::fill_n(weights + t * k, k, 0.0f);
}

void add_gate_signatures(const mome_bank& bank, MemoryLayer& layer, const float* queries, int64_t n) {
    const int64_t d = bank.params.key_dim;
    int64_t count = signature_count(layer);
    std::unordered_set<uint64_t>& held = layer.gate_hashes;
    if (static_cast<int64_t>(held.size()) != count) {  // first add since the bank was made or loaded
        held.clear();
        const auto* existing = reinterpret_cast<const float*>(layer.gate.data);
        for (int64_t i = 0; i < count; ++i) held.insert(bits_hash(existing + i * d, d));
    }
    std::vector<float> added;
    std::vector<uint64_t> added_hashes;
    std::vector<float> unit(static_cast<size_t>(d));
    for (int64_t t = 0; t < n; ++t) {
        if (!normalised(queries + t * d, d, unit.data()))
            fail(MOME_STATUS_INVALID_ARGUMENT, format("gate signature %lld is a zero query", static_cast<long long>(t)));
        const uint64_t h = bits_hash(unit.data(), d);
        if (held.count(h) || std::find(added_hashes.begin(), added_hashes.end(), h) != added_hashes.end()) continue;
        added_hashes.push_back(h);
        added.insert(added.end(), unit.begin(), unit.end());
    }
    if (added.empty()) return;
    held.insert(added_hashes.begin(), added_hashes.end());  // only now: a refused call adds nothing
    TableBytes& g = layer.gate;
    if (g.owned.empty() && g.size > 0) g.owned.assign(g.data, g.data + g.size);  // borrowed from a mapped file
    const auto* bytes = reinterpret_cast<const uint8_t*>(added.data());
    g.owned.insert(g.owned.end(), bytes, bytes + added.size() * sizeof(float));
    g.data = g.owned.data();
    g.size = g.owned.size();
    count += static_cast<int64_t>(added.size()) / d;
    g.shape = {count, d};
}

std::vector<float> fact_gate_queries(const mome_bank& bank, const int32_t* tokens, int64_t n, int64_t answer_start,
                                     ThreadPool& pool, int64_t* rows) {
    if (answer_start < 1 || answer_start >= n)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("a fact's answer must start inside it, after a question (answer_start %lld of %lld tokens)",
                                                  static_cast<long long>(answer_start), static_cast<long long>(n)));
    const std::vector<float> u = memory_layer_inputs(bank, tokens, n, pool);
    if (bank.params.routing == MOME_ROUTING_MODE_TOKEN) {
        // The positions whose next token is trained: the question's last token to the answer's
        // second-to-last (the last one, end of sequence, predicts nothing).
        *rows = n - answer_start;
        return token_queries(bank, u.data() + (answer_start - 1) * bank.model->config.n_embd, *rows, pool);
    }
    *rows = 1;
    return mean_query(bank, u.data(), answer_start, pool);
}

std::vector<float> text_queries(const mome_bank& bank, const int32_t* tokens, int64_t n, ThreadPool& pool, int64_t* rows) {
    require_arg(n >= 1, "the text has no tokens");
    const std::vector<float> u = memory_layer_inputs(bank, tokens, n, pool);
    const bool per_token = bank.params.routing == MOME_ROUTING_MODE_TOKEN;
    *rows = per_token ? n : 1;
    return per_token ? token_queries(bank, u.data(), n, pool) : mean_query(bank, u.data(), n, pool);
}

}  // namespace mome
