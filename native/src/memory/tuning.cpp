#include "memory/tuning.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "cpu/thread_pool.h"
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
// What the router's backward needs of a batch of one fact, on the host.
struct RouterInputs {
    std::vector<float> u0, dx, a_local, b_local, query, centred;
};

void router_backward(const mome_bank& bank, const RouterInputs& in, int64_t n, FactGradients& g) {
    const std::vector<float>& u = in.u0;
    const std::vector<float>& dx = in.dx;
    const std::vector<float>& a_local = in.a_local;
    const std::vector<float>& b_local = in.b_local;
    const std::vector<float>& query = in.query;
    const std::vector<float>& centred = in.centred;
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
    const int64_t l0 = bank.layers[static_cast<size_t>(bank.lowest_slot())].block;
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

void route_fact(const mome_bank& bank, int slot, const FactInput& fact, const float* u0, ThreadPool& pool, int n_threads, FactRoute& g,
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
        project_queries(bank, slot, u0, fact.n, q.data(), pool, false);
        g.indices.resize(static_cast<size_t>(entries));
        g.weights.resize(static_cast<size_t>(entries));
        route_bank(bank, slot, q.data(), fact.n, g.indices.data(), g.weights.data(), n_threads);
        apply_gate(bank, slot, q.data(), fact.n, g.weights.data(), n_threads);
        return;
    }
    std::vector<float> mean(static_cast<size_t>(D), 0.0f);
    for (int64_t t = 0; t < fact.answer_start; ++t)
        for (int64_t i = 0; i < D; ++i) mean[static_cast<size_t>(i)] += u0[t * D + i];
    for (float& m : mean) m /= static_cast<float>(fact.answer_start);
    std::vector<float> q(static_cast<size_t>(p.key_dim));
    project_queries(bank, slot, mean.data(), 1, q.data(), pool, false);
    g.indices.resize(static_cast<size_t>(k));
    g.weights.resize(static_cast<size_t>(k));
    route_bank(bank, slot, q.data(), 1, g.indices.data(), g.weights.data(), n_threads);
    apply_gate(bank, slot, q.data(), 1, g.weights.data(), n_threads);
    if (centred) {
        centred->resize(static_cast<size_t>(D));
        read_floats(bank.layers[static_cast<size_t>(slot)].centre, 0, D, centred->data());
        for (int64_t i = 0; i < D; ++i) (*centred)[static_cast<size_t>(i)] = mean[static_cast<size_t>(i)] - (*centred)[static_cast<size_t>(i)];
    }
    if (query) *query = std::move(q);
}

namespace {

void check_fact(const mome_llama_config& c, const FactInput& fact) {
    check_tokens(c, fact.tokens, fact.n);
    if (fact.n < 2 || fact.answer_start < 1 || fact.answer_start >= fact.n)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("a fact needs question tokens and at least one answer token (n_tokens = %lld, "
                                                  "answer_start = %lld)", static_cast<long long>(fact.n),
                                                  static_cast<long long>(fact.answer_start)));
    require_arg((fact.route_indices == nullptr) == (fact.route_weights == nullptr), "a cached route needs both its indices and its weights");
}

// A batch's routes in one memory layer, gathered: segments sharing a route (a fact, or each
// token when the bank routes per token), and the distinct routed experts, each read once as
// F32 into local tables that the forward's delta and the backward both use.
struct GatheredLayer {
    int slot = 0;
    BatchRoutes local;                  // route entries index the local tables
    std::vector<int32_t> experts;       // the bank's expert of each local table
    std::vector<float> a_local, b_local;  // [experts x rank x n_embd]
    Buffer d_a, d_b;                    // the same on the backend
    LoraTables tables;
};

GatheredLayer gather_layer(Backend& be, const mome_bank& bank, int slot, const std::vector<FactRoute>& routes,
                           const std::vector<int64_t>& starts, const std::vector<FactInput>& facts, const float* host_u) {
    const mome_bank_params& p = bank.params;
    const bool per_token = p.routing == MOME_ROUTING_MODE_TOKEN;
    const int64_t D = bank.model->config.n_embd, n = starts.back(), per_expert = p.rank * D;
    GatheredLayer g;
    g.slot = slot;
    g.local.order.resize(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) g.local.order[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    g.local.offsets.push_back(0);
    std::unordered_map<int32_t, int32_t> local_of;
    std::vector<int32_t> bank_indices;
    for (size_t f = 0; f < routes.size(); ++f) {
        const FactRoute& route = routes[f];
        const int64_t segments = per_token ? facts[f].n : 1;
        for (int64_t s = 0; s < segments; ++s) g.local.offsets.push_back(per_token ? g.local.offsets.back() + 1 : starts[f + 1]);
        for (size_t j = 0; j < route.indices.size(); ++j) {
            const auto [at, added] = local_of.emplace(route.indices[j], static_cast<int32_t>(g.experts.size()));
            if (added) g.experts.push_back(route.indices[j]);
            g.local.indices.push_back(at->second);
            g.local.weights.push_back(route.weights[j]);
            bank_indices.push_back(route.indices[j]);
        }
    }
    // Cached routes come from the caller: checked against the bank like any other batch.
    const LoraBatch routed{host_u, n, g.local.offsets.data(), static_cast<int64_t>(g.local.offsets.size()) - 1, bank_indices.data(),
                           g.local.weights.data(), p.top_k, p.alpha / static_cast<float>(p.rank)};
    check_lora_batch(bank_tables(bank, slot), routed);
    const MemoryLayer& layer = bank.layers[static_cast<size_t>(slot)];
    const int64_t n_distinct = static_cast<int64_t>(g.experts.size());
    g.a_local.resize(static_cast<size_t>(n_distinct * per_expert)), g.b_local.resize(g.a_local.size());
    for (int64_t j = 0; j < n_distinct; ++j) {
        const int64_t first = static_cast<int64_t>(g.experts[static_cast<size_t>(j)]) * per_expert;
        read_floats(layer.a, first, per_expert, g.a_local.data() + j * per_expert);
        read_floats(layer.b, first, per_expert, g.b_local.data() + j * per_expert);
    }
    g.d_a = upload(be, g.a_local), g.d_b = upload(be, g.b_local);
    g.tables = LoraTables{MOME_TENSOR_TYPE_F32, n_distinct, D, p.rank, g.d_a.as<uint8_t>(), g.d_b.as<uint8_t>()};
    return g;
}

// The backward of a gathered layer's delta over inputs u [n x n_embd] for its output gradient
// dout: each distinct expert's gradient sums over the segments routed to it; with du, also
// du += s sum_j w_j A_j^T (B_j^T dout) (the delta's own map, with A and B^T exchanged).
SlotGradients gathered_backward(Backend& be, const mome_bank& bank, const GatheredLayer& g, const float* u, int64_t n,
                                const float* dout, float* du) {
    const mome_bank_params& p = bank.params;
    const int64_t per_expert = p.rank * bank.model->config.n_embd, n_distinct = static_cast<int64_t>(g.experts.size());
    const Buffer d_offsets = upload(be, g.local.offsets), d_indices = upload(be, g.local.indices), d_weights = upload(be, g.local.weights);
    const LoraBatch lb{u, n, d_offsets.as<int64_t>(), static_cast<int64_t>(g.local.offsets.size()) - 1, d_indices.as<int32_t>(),
                       d_weights.as(), p.top_k, p.alpha / static_cast<float>(p.rank)};
    Buffer da = floats(be, n_distinct * per_expert, true), db = floats(be, n_distinct * per_expert, true);
    be.lora_backward(g.tables, lb, dout, da.as(), db.as());
    if (du) {
        LoraTables swapped = g.tables;
        std::swap(swapped.a, swapped.b);
        LoraBatch back = lb;
        back.u = dout;
        be.lora_apply(swapped, back, du);
    }
    SlotGradients out;
    out.slot = g.slot;
    out.experts = g.experts;
    out.da = download(be, da.as(), n_distinct * per_expert);
    out.db = download(be, db.as(), n_distinct * per_expert);
    return out;
}

// The memory layers above the lowest, inside the forward and backward of the blocks above it:
// each routes live (its input changes as the layers below it learn), from its own input,
// as a session asking the facts' questions would.
class UpperLayers final : public MemoryHook {
public:
    UpperLayers(Backend& be, const mome_bank& bank, const std::vector<FactInput>& facts, const std::vector<int64_t>& starts,
                ThreadPool& pool, int n_threads)
        : be_(be), bank_(bank), facts_(facts), starts_(starts), pool_(pool), n_threads_(n_threads) {}

    bool memory_delta(int64_t block, const float* u, int64_t n, float* delta) override {
        const int slot = bank_.slot_of_block(block);
        if (slot < 0 || slot == bank_.lowest_slot()) return false;
        const int64_t D = bank_.model->config.n_embd;
        const std::vector<float> host_u = download(be_, u, n * D);
        std::vector<FactRoute> routes(facts_.size());
        for (size_t f = 0; f < facts_.size(); ++f) {
            FactInput live = facts_[f];
            live.route_indices = nullptr, live.route_weights = nullptr;
            route_fact(bank_, slot, live, host_u.data() + starts_[f] * D, pool_, n_threads_, routes[f], nullptr, nullptr);
        }
        layers_.push_back(Layer{block, u, gather_layer(be_, bank_, slot, routes, starts_, facts_, host_u.data())});
        apply_memory_delta(be_, bank_, layers_.back().g.tables, layers_.back().g.local, u, n, delta);
        return true;
    }

    void memory_backward(int64_t block, const float* dout, int64_t n, float* du) override {
        for (const Layer& l : layers_)
            if (l.block == block) gradients.push_back(gathered_backward(be_, bank_, l.g, l.u, n, dout, du));
    }

    std::vector<SlotGradients> gradients;

private:
    struct Layer {
        int64_t block;
        const float* u;  // the block's kept input (LayerActivations::u)
        GatheredLayer g;
    };
    Backend& be_;
    const mome_bank& bank_;
    const std::vector<FactInput>& facts_;
    const std::vector<int64_t>& starts_;
    ThreadPool& pool_;
    int n_threads_;
    std::vector<Layer> layers_;
};

// The batch step; `router` (a batch of one fact only) receives what the router's backward needs.
BatchStep run_batch(const mome_bank& bank, const std::vector<FactInput>& facts, const BatchOptions& options, ThreadPool& pool,
                    int n_threads, RouterInputs* router) {
    require_arg(!facts.empty(), "a batch needs at least one fact");
    const mome_model& model = *bank.model;
    const mome_llama_config& c = model.config;
    const mome_bank_params& p = bank.params;
    const bool per_token = p.routing == MOME_ROUTING_MODE_TOKEN;
    for (const FactInput& f : facts) check_fact(c, f);
    // The backend: the given one (a GPU session's) or cpu-fast over the caller's pool.
    std::unique_ptr<Backend> own;
    LlamaWeights host;
    Backend* be = facts[0].backend;
    const LlamaWeights* w = facts[0].weights;
    require_arg((be == nullptr) == (w == nullptr), "a tuning step's backend comes with the model's weights on it");
    for (const FactInput& f : facts) require_arg(f.backend == be && f.weights == w, "the facts of a batch run on one backend");
    if (!be) {
        own = make_cpu_fast_backend(pool);
        be = own.get();
        host = load_llama_weights(*model.file, c);
        w = &host;
    } else if (be->device() != Device::Host && per_token) {
        fail(MOME_STATUS_UNSUPPORTED, "tuning steps on CUDA serve banks that route per sequence; tune per-token banks on the CPU");
    }
    // The lowest memory layer's input comes from the frozen blocks below it (or the caller's
    // cache of it); the layers above it route live inside the upper blocks (UpperLayers).
    const int lowest = bank.lowest_slot();
    const int64_t D = c.n_embd, l0 = bank.layers[static_cast<size_t>(lowest)].block, B = static_cast<int64_t>(facts.size());

    // The facts packed one sequence each: tokens [starts[f], starts[f+1]) at positions 0...
    std::vector<int64_t> starts{0};
    std::vector<int32_t> tokens, positions, seq_ids;
    int64_t longest = 0;
    bool all_prefixed = true;
    for (int64_t f = 0; f < B; ++f) {
        const FactInput& fact = facts[static_cast<size_t>(f)];
        for (int64_t t = 0; t < fact.n; ++t) {
            tokens.push_back(fact.tokens[t]);
            positions.push_back(static_cast<int32_t>(t));
            seq_ids.push_back(static_cast<int32_t>(f));
        }
        starts.push_back(starts.back() + fact.n);
        longest = std::max(longest, fact.n);
        all_prefixed = all_prefixed && fact.prefix != nullptr;
    }
    const int64_t n = starts.back();
    GraphInputs inputs(*be, tokens.data(), positions.data(), seq_ids.data(), n);
    // Each fact as a session asking it computes it: its question as one call, then each answer
    // token as a decode step of its own (quantized weights' kernels depend on the call size).
    std::vector<int64_t> calls;
    for (const FactInput& fact : facts) {
        calls.push_back(fact.answer_start);
        calls.insert(calls.end(), static_cast<size_t>(fact.n - fact.answer_start), 1);
    }
    inputs.set_calls(std::move(calls));
    KvCache cache = make_kv_cache(*be, c, B, longest);
    std::vector<LayerActivations> acts(static_cast<size_t>(c.n_layer));
    // The memory layer's input u0 and the residual stream x after its block (before the bank's
    // delta): the frozen layers below give the same for every step, so a caller may keep them.
    Buffer x = floats(*be, n * D), prefix_u0;
    const float* u0 = nullptr;
    if (all_prefixed) {
        prefix_u0 = floats(*be, n * D);
        for (int64_t f = 0; f < B; ++f) {
            const FactInput& fact = facts[static_cast<size_t>(f)];
            const uint64_t bytes = static_cast<uint64_t>(fact.n * D) * sizeof(float);
            be->upload(prefix_u0.as() + starts[static_cast<size_t>(f)] * D, fact.prefix, bytes);
            be->upload(x.as() + starts[static_cast<size_t>(f)] * D, fact.prefix + fact.n * D, bytes);
        }
        u0 = prefix_u0.as();
    } else {
        llama_embed(*be, *w, inputs.batch(), x.as());
        llama_forward(*be, c, *w, inputs.batch(), cache, 0, l0 + 1, x.as(), nullptr, &acts);
        u0 = acts[static_cast<size_t>(l0)].u.as();
    }
    const std::vector<float> host_u0 = download(*be, u0, n * D);
    const std::vector<float> host_x = all_prefixed ? std::vector<float>{} : download(*be, x.as(), n * D);

    // Each fact's route, from its question's mean input as a session asking it would (or cached).
    BatchStep step;
    step.facts.resize(static_cast<size_t>(B));
    std::vector<float>* query = router ? &router->query : nullptr;
    std::vector<float>* centred = router ? &router->centred : nullptr;
    std::vector<FactRoute> routes(static_cast<size_t>(B));
    for (int64_t f = 0; f < B; ++f)
        route_fact(bank, lowest, facts[static_cast<size_t>(f)], host_u0.data() + starts[static_cast<size_t>(f)] * D, pool, n_threads,
                   routes[static_cast<size_t>(f)], query, centred);
    const GatheredLayer low = gather_layer(*be, bank, lowest, routes, starts, facts, host_u0.data());
    for (int64_t f = 0; f < B; ++f) step.facts[static_cast<size_t>(f)].route = std::move(routes[static_cast<size_t>(f)]);
    {
        Buffer delta = floats(*be, n * D);
        apply_memory_delta(*be, bank, low.tables, low.local, u0, n, delta.as());
        be->add(x.as(), delta.as(), n * D);
    }
    UpperLayers upper(*be, bank, facts, starts, pool, n_threads);
    llama_forward(*be, c, *w, inputs.batch(), cache, l0 + 1, c.n_layer, x.as(), &upper, &acts);

    // The answers' losses, then back through the blocks above the memory layer.
    std::vector<AnswerSpan> spans;
    std::vector<int32_t> targets;
    for (int64_t f = 0; f < B; ++f) {
        const FactInput& fact = facts[static_cast<size_t>(f)];
        spans.push_back(AnswerSpan{starts[static_cast<size_t>(f)] + fact.answer_start - 1, fact.n - fact.answer_start});
        targets.insert(targets.end(), fact.tokens + fact.answer_start, fact.tokens + fact.n);
    }
    Buffer dx = floats(*be, n * D);
    // No backward is wanted of the loss head when none will run, or when the learning facts
    // will run again as a batch of their own (at most half the batch: see below).
    const int64_t backward_above = !options.backward ? B : router == nullptr ? B / 2 : -1;
    const std::vector<LossResult> losses = llama_loss(*be, c, *w, x.as(), n, spans, targets, options.skip_exact, dx.as(), nullptr,
                                                      backward_above);
    std::vector<int64_t> learning;  // the facts whose gradient counts
    for (int64_t f = 0; f < B; ++f) {
        BatchStep::Fact& out = step.facts[static_cast<size_t>(f)];
        const LossResult& l = losses[static_cast<size_t>(f)];
        out.loss = l.loss, out.n_answer = l.n_answer, out.n_correct = l.n_correct, out.n_sure = l.n_sure;
        if (!(options.skip_exact && l.exact())) learning.push_back(f);
    }
    const bool any_gradient = !learning.empty();
    // The caller's prefixes, once the step can no longer fail.
    if (!all_prefixed)
        for (int64_t f = 0; f < B; ++f)
            if (float* out = facts[static_cast<size_t>(f)].prefix_out) {
                const int64_t at = starts[static_cast<size_t>(f)] * D, count = facts[static_cast<size_t>(f)].n * D;
                std::copy(host_u0.begin() + at, host_u0.begin() + at + count, out);
                std::copy(host_x.begin() + at, host_x.begin() + at + count, out + count);
            }
    if (!options.backward || !any_gradient) return step;
    // When at most half the batch still learns, its backward alone is cheaper than the whole
    // batch's (exact facts would only carry zeros through it): those facts run again as a
    // batch of their own, with the routes and frozen-layer outputs found here.
    if (router == nullptr && 2 * static_cast<int64_t>(learning.size()) <= B) {
        std::vector<std::vector<float>> kept(learning.size());
        std::vector<FactInput> again;
        for (size_t i = 0; i < learning.size(); ++i) {
            const int64_t f = learning[i];
            FactInput in = facts[static_cast<size_t>(f)];
            const FactRoute& route = step.facts[static_cast<size_t>(f)].route;
            in.route_indices = route.indices.data(), in.route_weights = route.weights.data();
            in.prefix_out = nullptr;
            if (!in.prefix) {
                const int64_t at = starts[static_cast<size_t>(f)] * D, count = in.n * D;
                kept[i].assign(host_u0.begin() + at, host_u0.begin() + at + count);
                kept[i].insert(kept[i].end(), host_x.begin() + at, host_x.begin() + at + count);
                in.prefix = kept[i].data();
            }
            again.push_back(in);
        }
        BatchStep part = run_batch(bank, again, BatchOptions{true, false}, pool, n_threads, nullptr);
        step.experts = std::move(part.experts);
        step.da = std::move(part.da);
        step.db = std::move(part.db);
        step.upper = std::move(part.upper);
        return step;
    }
    llama_backward_from(*be, c, *w, inputs.batch(), starts, cache, acts, l0 + 1, c.n_layer, dx.as(), &upper);

    // Into the lowest layer's routed experts.
    SlotGradients g = gathered_backward(*be, bank, low, u0, n, dx.as(), nullptr);
    step.experts = std::move(g.experts);
    step.da = std::move(g.da);
    step.db = std::move(g.db);
    step.upper = std::move(upper.gradients);
    if (router) {
        router->u0 = host_u0;
        router->dx = download(*be, dx.as(), n * D);
        router->a_local = low.a_local;
        router->b_local = low.b_local;
    }
    return step;
}

}  // namespace

namespace {

// A thread's own cpu-fast backend, over a pool of that thread alone: what one part of a batch
// split over a pool's threads runs on (buffers reused from step to step, as the tuner's are).
struct ThreadBackend {
    ThreadPool pool{1};
    std::unique_ptr<Backend> backend = make_cpu_fast_backend(pool);
};

ThreadBackend& thread_backend() {
    thread_local ThreadBackend own;
    return own;
}

// One memory layer's gradients summed over the parts of a batch: the distinct experts in
// order of appearance, each block of a shared expert the sum of its parts' (buffers sized
// once).
SlotGradients merge_gradients(int slot, const std::vector<const SlotGradients*>& parts, int64_t per_expert,
                              GradientBuffers* reuse = nullptr) {
    SlotGradients out;
    out.slot = slot;
    if (reuse) {
        out.da = std::move(reuse->da), out.db = std::move(reuse->db);
        out.da.clear(), out.db.clear();
    }
    std::unordered_map<int32_t, size_t> at;
    for (const SlotGradients* g : parts)
        for (const int32_t e : g->experts)
            if (at.emplace(e, out.experts.size()).second) out.experts.push_back(e);
    if (out.experts.empty()) return out;
    const size_t size = out.experts.size() * static_cast<size_t>(per_expert);
    out.da.reserve(size), out.db.reserve(size);  // blocks appended in the experts' order: no copy, no zeroing
    for (const SlotGradients* g : parts)
        for (size_t j = 0; j < g->experts.size(); ++j) {
            const size_t k = at[g->experts[j]];
            const float* a = g->da.data() + j * static_cast<size_t>(per_expert);
            const float* b = g->db.data() + j * static_cast<size_t>(per_expert);
            if (k * static_cast<size_t>(per_expert) == out.da.size()) {
                out.da.insert(out.da.end(), a, a + per_expert);
                out.db.insert(out.db.end(), b, b + per_expert);
                continue;
            }
            float* da = out.da.data() + k * static_cast<size_t>(per_expert);
            float* db = out.db.data() + k * static_cast<size_t>(per_expert);
            for (int64_t i = 0; i < per_expert; ++i) da[i] += a[i], db[i] += b[i];
        }
    return out;
}

// Splits facts [0, n) into `parts` consecutive runs of about equal tokens: run i is
// [bounds[i], bounds[i + 1]).
std::vector<size_t> split_by_tokens(const std::vector<FactInput>& facts, int64_t parts) {
    int64_t total = 0;
    for (const FactInput& f : facts) total += f.n;
    std::vector<size_t> bounds{0};
    int64_t seen = 0;
    for (size_t f = 0; f < facts.size(); ++f) {
        seen += facts[f].n;
        const int64_t left = static_cast<int64_t>(facts.size() - f - 1), runs_left = parts - static_cast<int64_t>(bounds.size());
        if (runs_left > 0 && (seen * parts >= total * static_cast<int64_t>(bounds.size()) || left == runs_left))
            bounds.push_back(f + 1);
    }
    if (bounds.back() != facts.size()) bounds.push_back(facts.size());
    return bounds;
}

}  // namespace

// On the CPU, a batch runs as parts spread over the pool's threads, each part one graph batch
// on its thread's own backend: the facts of a batch are independent sequences, so the parts
// need no synchronisation until their gradients are summed (experts routed in several parts
// add up, as they do within one part). A thread then runs a part's serial work (norms,
// attention, cross-entropy, gathers) alongside the others instead of waiting on one thread's
// loop, and the parallel loops inside a step stop paying a fork and join each. A batch of
// one, or a pool of one thread, runs as one part over the pool (the loops spread over it).
BatchStep batch_step(const mome_bank& bank, const std::vector<FactInput>& facts, const BatchOptions& options, ThreadPool& pool,
                     int n_threads, GradientBuffers* reuse) {
    require_arg(!facts.empty(), "a batch needs at least one fact");
    Backend* be = facts[0].backend;
    const int64_t parts = std::min<int64_t>(static_cast<int64_t>(facts.size()), 2 * static_cast<int64_t>(pool.size()));
    if (parts < 2 || pool.size() < 2 || (be && be->device() != Device::Host))
        return run_batch(bank, facts, options, pool, n_threads, nullptr);
    for (const FactInput& f : facts)
        require_arg(f.backend == be && f.weights == facts[0].weights, "the facts of a batch run on one backend");
    // A host backend's weights are host tensors, readable by every thread's backend.
    LlamaWeights host;
    const LlamaWeights* w = facts[0].weights;
    if (!w) {
        host = load_llama_weights(*bank.model->file, bank.model->config);
        w = &host;
    }
    const std::vector<size_t> bounds = split_by_tokens(facts, parts);
    std::vector<BatchStep> steps(bounds.size() - 1);
    pool.run(static_cast<int64_t>(steps.size()), [&](int64_t i) {
        ThreadBackend& own = thread_backend();
        std::vector<FactInput> part(facts.begin() + static_cast<std::ptrdiff_t>(bounds[static_cast<size_t>(i)]),
                                    facts.begin() + static_cast<std::ptrdiff_t>(bounds[static_cast<size_t>(i) + 1]));
        for (FactInput& f : part) f.backend = own.backend.get(), f.weights = w;
        steps[static_cast<size_t>(i)] = run_batch(bank, part, options, own.pool, 1, nullptr);
    });
    // The parts in order: the facts, then each memory layer's gradients summed over them.
    const int64_t per_expert = bank.params.rank * bank.model->config.n_embd;
    BatchStep out;
    std::vector<SlotGradients> lows(steps.size());
    std::vector<const SlotGradients*> low_parts;
    std::vector<int> upper_slots;
    for (size_t i = 0; i < steps.size(); ++i) {
        BatchStep& s = steps[i];
        for (BatchStep::Fact& f : s.facts) out.facts.push_back(std::move(f));
        lows[i] = SlotGradients{0, std::move(s.experts), std::move(s.da), std::move(s.db)};
        low_parts.push_back(&lows[i]);
        for (const SlotGradients& g : s.upper)
            if (std::find(upper_slots.begin(), upper_slots.end(), g.slot) == upper_slots.end()) upper_slots.push_back(g.slot);
    }
    SlotGradients low = merge_gradients(0, low_parts, per_expert, reuse);
    out.experts = std::move(low.experts);
    out.da = std::move(low.da);
    out.db = std::move(low.db);
    // Each part lists its layers from the top down (a part with no backward lists none).
    std::sort(upper_slots.begin(), upper_slots.end(), [&](int a, int b) {
        return bank.layers[static_cast<size_t>(a)].block > bank.layers[static_cast<size_t>(b)].block;
    });
    for (const int slot : upper_slots) {
        std::vector<const SlotGradients*> parts;
        for (const BatchStep& s : steps)
            for (const SlotGradients& g : s.upper)
                if (g.slot == slot) parts.push_back(&g);
        out.upper.push_back(merge_gradients(slot, parts, per_expert));
    }
    return out;
}

FactGradients fact_gradients(const mome_bank& bank, const FactInput& fact, bool router_gradients, ThreadPool& pool,
                             int n_threads) {
    const bool cached = fact.route_indices != nullptr;
    if (router_gradients && cached)
        fail(MOME_STATUS_INVALID_ARGUMENT, "router gradients need live routing: give no cached route when asking for them");
    const mome_bank_params& p = bank.params;
    if (router_gradients && p.routing == MOME_ROUTING_MODE_TOKEN)
        fail(MOME_STATUS_UNSUPPORTED, "router gradients are computed for banks that route per sequence; this one routes per token");
    if (router_gradients && fact.backend && fact.backend->device() != Device::Host)
        fail(MOME_STATUS_UNSUPPORTED, "router gradients are computed on the CPU only: give no session with them");
    if (p.n_layers != 1)
        fail(MOME_STATUS_UNSUPPORTED, format("one fact's gradients are given for banks with one memory layer; this one has %d: tune it "
                                             "with mome_tuner", p.n_layers));
    RouterInputs router;
    BatchStep step = run_batch(bank, {fact}, BatchOptions{}, pool, n_threads, router_gradients ? &router : nullptr);
    FactGradients g;
    BatchStep::Fact& f = step.facts[0];
    static_cast<FactRoute&>(g) = std::move(f.route);
    g.loss = f.loss, g.n_answer = f.n_answer, g.n_correct = f.n_correct, g.n_sure = f.n_sure;
    g.experts = std::move(step.experts);
    g.da = std::move(step.da);
    g.db = std::move(step.db);
    if (router_gradients) router_backward(bank, router, fact.n, g);
    return g;
}

}  // namespace mome
