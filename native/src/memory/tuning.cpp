#include "memory/tuning.h"

#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "memory/gate.h"
#include "memory/memory_layer.h"
#include "model/llama_graph.h"

namespace mome {

namespace {

void check_tokens(const mome_llama_config& c, const int32_t* tokens, int64_t n) {
    require_arg(tokens != nullptr, "tokens is null");
    if (n < 1 || n > c.n_ctx_train)
        fail(MOME_STATUS_OUT_OF_RANGE, format("%lld tokens: a fact or question needs 1..%lld (the model's context)",
                                              static_cast<long long>(n), static_cast<long long>(c.n_ctx_train)));
    for (int64_t t = 0; t < n; ++t)
        if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
            fail(MOME_STATUS_OUT_OF_RANGE, format("token %d at %lld is outside the vocabulary", tokens[t], static_cast<long long>(t)));
}

// Positions 0..n-1 of one sequence.
std::vector<int32_t> positions_of(int64_t n) {
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    return pos;
}

// Keeps the memory layer's input of one block and adds nothing.
class CaptureInput final : public MemoryHook {
public:
    CaptureInput(Backend& backend, int64_t block, int64_t d) : backend_(backend), block_(block), d_(d) {}
    bool memory_delta(int64_t layer, const float* u, int64_t n, float*) override {
        if (layer == block_) captured = download(backend_, u, n * d_);
        return false;
    }
    std::vector<float> captured;

private:
    Backend& backend_;
    int64_t block_, d_;
};

// The router's gradients. The memory layer adds delta_t = s * sum_j w_j B_j A_j u_t with
// w = softmax(score / T) over the route and score_j = q . key_j / sqrt(key_dim); so
// dL/dw_j = s * sum_t <B_j A_j u_t, dx_t>, through the softmax to the scores, then to the
// query q = W_q (mean - centre) and to each route entry's key.
void router_backward(const mome_bank& bank, const std::vector<float>& u, int64_t n, const std::vector<float>& dx,
                     const std::vector<float>& a_local, const std::vector<float>& b_local, const std::vector<float>& query,
                     const std::vector<float>& centred, FactGradients& g) {
    const mome_bank_params& p = bank.params;
    const int64_t D = bank.model->config.n_embd, k = p.top_k, r = p.rank, kd = p.key_dim;
    const double lora_scale = p.alpha / static_cast<double>(p.rank);
    std::vector<double> dw(static_cast<size_t>(k), 0.0);
    for (int64_t j = 0; j < k; ++j) {
        const float* A = a_local.data() + j * r * D;
        const float* B = b_local.data() + j * r * D;
        for (int64_t t = 0; t < n; ++t)
            for (int64_t i = 0; i < r; ++i) {
                double z = 0, back = 0;
                for (int64_t e = 0; e < D; ++e) {
                    z += static_cast<double>(A[i * D + e]) * u[static_cast<size_t>(t * D + e)];
                    back += static_cast<double>(B[i * D + e]) * dx[static_cast<size_t>(t * D + e)];
                }
                dw[static_cast<size_t>(j)] += lora_scale * z * back;
            }
    }
    double mean_dw = 0;
    for (int64_t j = 0; j < k; ++j) mean_dw += g.weights[static_cast<size_t>(j)] * dw[static_cast<size_t>(j)];
    // d(dot product) of each route entry: softmax backward, then the 1/sqrt(key_dim) scale.
    const double key_scale = 1.0 / std::sqrt(static_cast<double>(kd));
    std::vector<double> ddot(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j)
        ddot[static_cast<size_t>(j)] = g.weights[static_cast<size_t>(j)] * (dw[static_cast<size_t>(j)] - mean_dw) / p.temperature * key_scale;

    // The key each route entry was scored with (a product router: its two sub-keys).
    const TableBytes& keys = bank.layers[0].keys;
    const int64_t n_sub = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(p.n_experts)))), half = kd / 2;
    std::vector<float> key(static_cast<size_t>(kd));
    std::vector<double> dq(static_cast<size_t>(kd), 0.0);
    g.dkeys.assign(static_cast<size_t>(k * kd), 0.0f);
    for (int64_t j = 0; j < k; ++j) {
        const int64_t e = g.indices[static_cast<size_t>(j)];
        if (p.router == MOME_ROUTER_KIND_PRODUCT) {
            read_floats(keys, (e / n_sub) * half, half, key.data());
            read_floats(keys, (n_sub + e % n_sub) * half, half, key.data() + half);
        } else {
            read_floats(keys, e * kd, kd, key.data());
        }
        for (int64_t i = 0; i < kd; ++i) {
            dq[static_cast<size_t>(i)] += ddot[static_cast<size_t>(j)] * key[static_cast<size_t>(i)];
            g.dkeys[static_cast<size_t>(j * kd + i)] = static_cast<float>(ddot[static_cast<size_t>(j)] * query[static_cast<size_t>(i)]);
        }
    }
    g.dwq.assign(static_cast<size_t>(kd * D), 0.0f);
    for (int64_t i = 0; i < kd; ++i)
        for (int64_t e = 0; e < D; ++e)
            g.dwq[static_cast<size_t>(i * D + e)] = static_cast<float>(dq[static_cast<size_t>(i)] * centred[static_cast<size_t>(e)]);
}

}  // namespace

std::vector<float> memory_layer_inputs(const mome_bank& bank, const int32_t* tokens, int64_t n, ThreadPool& pool) {
    const mome_model& model = *bank.model;
    const mome_llama_config& c = model.config;
    check_tokens(c, tokens, n);
    const LlamaWeights w = load_llama_weights(*model.file, c);
    const std::unique_ptr<Backend> be = make_cpu_fast_backend(pool);
    const int64_t l0 = bank.layers[0].block;
    const GraphInputs inputs(*be, tokens, positions_of(n).data(), nullptr, n);
    KvCache cache = make_kv_cache(*be, c, 1, n);
    Buffer x = floats(*be, n * c.n_embd);
    llama_embed(*be, w, inputs.batch(), x.as());
    CaptureInput capture(*be, l0, c.n_embd);
    llama_forward(*be, c, w, inputs.batch(), cache, 0, l0 + 1, x.as(), &capture, nullptr);
    return std::move(capture.captured);
}

std::vector<float> question_mean(const mome_bank& bank, const int32_t* tokens, int64_t n, ThreadPool& pool) {
    const int64_t D = bank.model->config.n_embd;
    const std::vector<float> u = memory_layer_inputs(bank, tokens, n, pool);
    std::vector<float> mean(static_cast<size_t>(D), 0.0f);
    for (int64_t t = 0; t < n; ++t)
        for (int64_t i = 0; i < D; ++i) mean[static_cast<size_t>(i)] += u[static_cast<size_t>(t * D + i)] / static_cast<float>(n);
    return mean;
}

void route_fact(const mome_bank& bank, const FactInput& fact, const float* u0, ThreadPool& pool, int n_threads, FactGradients& g,
                std::vector<float>* query, std::vector<float>* centred) {
    const mome_bank_params& p = bank.params;
    const int64_t D = bank.model->config.n_embd, k = p.top_k;
    const bool per_token = p.routing == MOME_ROUTING_MODE_TOKEN;
    const int64_t entries = per_token ? fact.n * k : k;
    if (fact.route_indices) {
        g.indices.assign(fact.route_indices, fact.route_indices + entries);
        g.weights.assign(fact.route_weights, fact.route_weights + entries);
        return;
    }
    if (per_token) {  // every token from its own input, as a session routing per token would
        std::vector<float> q(static_cast<size_t>(fact.n * p.key_dim));
        project_queries(bank, 0, u0, fact.n, q.data(), pool, false);
        g.indices.resize(static_cast<size_t>(entries));
        g.weights.resize(static_cast<size_t>(entries));
        route_bank(bank, 0, q.data(), fact.n, g.indices.data(), g.weights.data(), n_threads);
        apply_gate(bank, 0, q.data(), fact.n, g.weights.data(), n_threads);
        return;
    }
    std::vector<float> mean(static_cast<size_t>(D), 0.0f);
    for (int64_t t = 0; t < fact.answer_start; ++t)
        for (int64_t i = 0; i < D; ++i) mean[static_cast<size_t>(i)] += u0[t * D + i];
    for (float& m : mean) m /= static_cast<float>(fact.answer_start);
    std::vector<float> q(static_cast<size_t>(p.key_dim));
    project_queries(bank, 0, mean.data(), 1, q.data(), pool, false);
    g.indices.resize(static_cast<size_t>(k));
    g.weights.resize(static_cast<size_t>(k));
    route_bank(bank, 0, q.data(), 1, g.indices.data(), g.weights.data(), n_threads);
    apply_gate(bank, 0, q.data(), 1, g.weights.data(), n_threads);
    if (centred) {
        centred->resize(static_cast<size_t>(D));
        read_floats(bank.layers[0].centre, 0, D, centred->data());
        for (int64_t i = 0; i < D; ++i) (*centred)[static_cast<size_t>(i)] = mean[static_cast<size_t>(i)] - (*centred)[static_cast<size_t>(i)];
    }
    if (query) *query = std::move(q);
}

FactGradients fact_gradients(const mome_bank& bank, const FactInput& fact, bool router_gradients, ThreadPool& pool,
                             int n_threads) {
    const int32_t* tokens = fact.tokens;
    const int64_t n = fact.n, answer_start = fact.answer_start;
    const bool cached = fact.route_indices != nullptr;
    require_arg(cached == (fact.route_weights != nullptr), "a cached route needs both its indices and its weights");
    if (router_gradients && cached)
        fail(MOME_STATUS_INVALID_ARGUMENT, "router gradients need live routing: give no cached route when asking for them");
    const mome_model& model = *bank.model;
    const mome_llama_config& c = model.config;
    const mome_bank_params& p = bank.params;
    if (p.n_layers != 1) fail(MOME_STATUS_UNSUPPORTED, format("tuning supports banks with one memory layer; this one has %d", p.n_layers));
    const bool per_token = p.routing == MOME_ROUTING_MODE_TOKEN;
    if (per_token && router_gradients)
        fail(MOME_STATUS_UNSUPPORTED, "router gradients are computed for banks that route per sequence; this one routes per token");
    check_tokens(c, tokens, n);
    if (n < 2 || answer_start < 1 || answer_start >= n)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("a fact needs question tokens and at least one answer token (n_tokens = %lld, "
                                                  "answer_start = %lld)", static_cast<long long>(n), static_cast<long long>(answer_start)));
    // The backend: the given one (a GPU session's) or cpu-fast over the caller's pool.
    std::unique_ptr<Backend> own;
    LlamaWeights host;
    Backend* be = fact.backend;
    const LlamaWeights* w = fact.weights;
    require_arg((be == nullptr) == (w == nullptr), "a tuning step's backend comes with the model's weights on it");
    if (!be) {
        own = make_cpu_fast_backend(pool);
        be = own.get();
        host = load_llama_weights(*model.file, c);
        w = &host;
    } else if (be->device() != Device::Host) {
        if (router_gradients) fail(MOME_STATUS_UNSUPPORTED, "router gradients are computed on the CPU only: give no session with them");
        if (per_token)
            fail(MOME_STATUS_UNSUPPORTED, "tuning steps on CUDA serve banks that route per sequence; tune per-token banks on the CPU");
    }
    const int64_t D = c.n_embd, l0 = bank.layers[0].block, r = p.rank;
    FactGradients g;
    const GraphInputs inputs(*be, tokens, positions_of(n).data(), nullptr, n);
    KvCache cache = make_kv_cache(*be, c, 1, n);
    std::vector<LayerActivations> acts(static_cast<size_t>(c.n_layer));
    // The memory layer's input u0 and the residual stream x after its block (before the bank's
    // delta): the frozen layers below give the same for every step, so a caller may keep them.
    Buffer x = floats(*be, n * D), prefix_u0;
    const float* u0 = nullptr;
    if (fact.prefix) {
        prefix_u0 = floats(*be, n * D);
        be->upload(prefix_u0.as<void>(), fact.prefix, static_cast<uint64_t>(n * D) * sizeof(float));
        be->upload(x.as<void>(), fact.prefix + n * D, static_cast<uint64_t>(n * D) * sizeof(float));
        u0 = prefix_u0.as();
    } else {
        llama_embed(*be, *w, inputs.batch(), x.as());
        llama_forward(*be, c, *w, inputs.batch(), cache, 0, l0 + 1, x.as(), nullptr, &acts);
        u0 = acts[static_cast<size_t>(l0)].u.as();
    }
    const std::vector<float> host_u0 = download(*be, u0, n * D);
    if (fact.prefix_out) {
        std::copy(host_u0.begin(), host_u0.end(), fact.prefix_out);
        be->download(fact.prefix_out + n * D, x.as(), static_cast<uint64_t>(n * D) * sizeof(float));
    }

    // The memory layer: route from the question's mean input, as a session asking it would.
    std::vector<float> query, centred;
    route_fact(bank, fact, host_u0.data(), pool, n_threads, g, &query, &centred);
    // One segment sharing the route, or one per token.
    std::vector<int64_t> offsets{0};
    for (int64_t t = 1; t <= n; ++t)
        if (per_token || t == n) offsets.push_back(t);
    if (cached) {
        LoraBatch given{host_u0.data(), n, offsets.data(), static_cast<int64_t>(offsets.size()) - 1, g.indices.data(), g.weights.data(),
                        p.top_k, p.alpha / static_cast<float>(p.rank)};
        check_lora_batch(bank_tables(bank, 0), given);
    }
    // The routed experts, each distinct one gathered once as F32, in local tables that the
    // forward's delta and the backward both use.
    std::unordered_map<int32_t, int32_t> slot_of;
    BatchRoutes local;
    local.order.resize(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) local.order[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    local.offsets = offsets;
    local.weights = g.weights;
    for (const int32_t e : g.indices) {
        const auto [at, added] = slot_of.emplace(e, static_cast<int32_t>(g.experts.size()));
        if (added) g.experts.push_back(e);
        local.indices.push_back(at->second);
    }
    const int64_t per_expert = r * D, n_distinct = static_cast<int64_t>(g.experts.size());
    std::vector<float> a_local(static_cast<size_t>(n_distinct * per_expert)), b_local(a_local.size());
    for (int64_t j = 0; j < n_distinct; ++j) {
        const int64_t first = static_cast<int64_t>(g.experts[static_cast<size_t>(j)]) * per_expert;
        read_floats(bank.layers[0].a, first, per_expert, a_local.data() + j * per_expert);
        read_floats(bank.layers[0].b, first, per_expert, b_local.data() + j * per_expert);
    }
    const Buffer d_a = upload(*be, a_local), d_b = upload(*be, b_local);
    const LoraTables tables{MOME_TENSOR_TYPE_F32, n_distinct, D, p.rank, d_a.as<uint8_t>(), d_b.as<uint8_t>()};
    {
        Buffer delta = floats(*be, n * D);
        apply_memory_delta(*be, bank, tables, local, u0, n, delta.as());
        be->add(x.as(), delta.as(), n * D);
    }
    llama_forward(*be, c, *w, inputs.batch(), cache, l0 + 1, c.n_layer, x.as(), nullptr, &acts);

    // The loss over the answer, then back through the blocks above the memory layer.
    const std::vector<int32_t> answer(tokens + answer_start, tokens + n);
    const Buffer targets = upload(*be, answer);
    Buffer dx = floats(*be, n * D);
    const LossResult loss = llama_loss(*be, c, *w, x.as(), n, answer_start, targets.as<int32_t>(), answer.data(), dx.as());
    g.loss = loss.loss, g.n_answer = loss.n_answer, g.n_correct = loss.n_correct;
    llama_backward_from(*be, c, *w, inputs.batch(), cache, acts, l0 + 1, c.n_layer, dx.as());

    // Into the routed experts.
    const Buffer d_offsets = upload(*be, offsets), d_indices = upload(*be, local.indices), d_weights = upload(*be, g.weights);
    const LoraBatch b{u0, n, d_offsets.as<int64_t>(), static_cast<int64_t>(offsets.size()) - 1, d_indices.as<int32_t>(),
                      d_weights.as(), p.top_k, p.alpha / static_cast<float>(p.rank)};
    Buffer da = floats(*be, n_distinct * per_expert, true), db = floats(*be, n_distinct * per_expert, true);
    be->lora_backward(tables, b, dx.as(), da.as(), db.as());
    g.da = download(*be, da.as(), n_distinct * per_expert);
    g.db = download(*be, db.as(), n_distinct * per_expert);
    if (router_gradients) {
        const std::vector<float> host_dx = download(*be, dx.as(), n * D);
        router_backward(bank, host_u0, n, host_dx, a_local, b_local, query, centred, g);
    }
    return g;
}

}  // namespace mome
