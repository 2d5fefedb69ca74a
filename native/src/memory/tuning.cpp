#include "memory/tuning.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "core/half.h"
#include "cpu/ops.h"
#include "cpu/ops_backward.h"
#include "memory/gate.h"
#include "memory/lora.h"
#include "memory/memory_layer.h"
#include "model/llama_weights.h"
#include "model/session.h"

namespace mome {

namespace {

// Activations of one layer above the memory layer, for its backward.
struct LayerActivations {
    std::vector<float> x, xn, q, k, v, attn, h, u, gate, up;
};

struct Forward {
    const mome_llama_config& c;
    const LlamaWeights& w;
    RopeParams rope;
    ThreadPool& pool;
    int64_t n;
    std::vector<int32_t> pos;

    // Y = X W^T with activations rounded as in inference.
    std::vector<float> project(const Matrix& W, const std::vector<float>& X) const {
        std::vector<float> in = X, out(static_cast<size_t>(n * W.rows));
        round_activations_like_weights(W.type, in.data(), n * W.cols);
        matmul_fast(W, in.data(), n, out.data(), pool);
        return out;
    }

    std::vector<float> norm(const std::vector<float>& x, const std::vector<float>& weight) const {
        std::vector<float> out(x.size());
        for (int64_t t = 0; t < n; ++t) rms_norm_ref(x.data() + t * c.n_embd, weight.data(), c.n_embd, c.rms_norm_eps, out.data() + t * c.n_embd);
        return out;
    }

    // The attention half of a layer: returns h = x + attention, filling the activations.
    std::vector<float> attention(const LayerWeights& L, const std::vector<float>& x, LayerActivations& a) const {
        const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, v_dim = c.n_head_kv * c.head_dim_v;
        a.x = x;
        a.xn = norm(x, L.attn_norm);
        a.q = project(L.wq, a.xn);
        a.k = project(L.wk, a.xn);
        a.v = project(L.wv, a.xn);
        for (int64_t t = 0; t < n; ++t) {
            rope_norm_ref(a.q.data() + t * q_dim, c.n_head, c.head_dim, pos[static_cast<size_t>(t)], rope);
            rope_norm_ref(a.k.data() + t * kv_dim, c.n_head_kv, c.head_dim, pos[static_cast<size_t>(t)], rope);
        }
        a.attn.assign(static_cast<size_t>(n * c.n_head * c.head_dim_v), 0.0f);
        (void)v_dim;
        pool.run(n, [&](int64_t t) {
            attention_ref(a.q.data() + t * q_dim, a.k.data(), a.v.data(), t + 1, c.n_head, c.n_head_kv, c.head_dim,
                          a.attn.data() + t * c.n_head * c.head_dim_v);
        });
        std::vector<float> h = x, o = project(L.wo, a.attn);
        for (size_t i = 0; i < h.size(); ++i) h[i] += o[i];
        return h;
    }

    // The MLP half: x_next = h + down(silu(gate u) * up u); fills u, gate, up.
    std::vector<float> mlp(const LayerWeights& L, const std::vector<float>& h, LayerActivations& a) const {
        a.h = h;
        a.u = norm(h, L.ffn_norm);
        a.gate = project(L.gate, a.u);
        a.up = project(L.up, a.u);
        std::vector<float> act(a.gate.size());
        swiglu_ref(a.gate.data(), a.up.data(), static_cast<int64_t>(act.size()), act.data());
        std::vector<float> x = h, o = project(L.down, act);
        for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
        return x;
    }
};

void add_backward_input(const Matrix& W, const std::vector<float>& dY, int64_t n, std::vector<float>& dX, ThreadPool& pool) {
    matmul_backward_input(W, dY.data(), n, dX.data(), &pool);
}

void check_tokens(const mome_llama_config& c, const int32_t* tokens, int64_t n) {
    require_arg(tokens != nullptr, "tokens is null");
    if (n < 1 || n > c.n_ctx_train)
        fail(MOME_STATUS_OUT_OF_RANGE, format("%lld tokens: a fact or question needs 1..%lld (the model's context)",
                                              static_cast<long long>(n), static_cast<long long>(c.n_ctx_train)));
    for (int64_t t = 0; t < n; ++t)
        if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
            fail(MOME_STATUS_OUT_OF_RANGE, format("token %d at %lld is outside the vocabulary", tokens[t], static_cast<long long>(t)));
}

// A forward over positions 0..n-1 of one sequence.
Forward make_forward(const mome_llama_config& c, const LlamaWeights& w, ThreadPool& pool, int64_t n) {
    Forward f{c, w, RopeParams{}, pool, n, std::vector<int32_t>(static_cast<size_t>(n))};
    f.rope.n_rot = c.n_rot;
    f.rope.freq_base = c.rope_freq_base;
    f.rope.freq_scale = c.rope_freq_scale;
    f.rope.freq_factors = w.rope_freqs.empty() ? nullptr : w.rope_freqs.data();
    for (int64_t t = 0; t < n; ++t) f.pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    return f;
}

std::vector<float> embed_all(const LlamaWeights& w, const int32_t* tokens, int64_t n, int64_t d) {
    std::vector<float> x(static_cast<size_t>(n * d));
    for (int64_t t = 0; t < n; ++t) embed_ref(w.token_embd, tokens[t], x.data() + t * d);
    return x;
}

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
    const Forward f = make_forward(c, w, pool, n);
    const int64_t D = c.n_embd, l0 = bank.layers[0].block;
    std::vector<float> x = embed_all(w, tokens, n, D);
    LayerActivations a;
    for (int64_t l = 0; l <= l0; ++l) {
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];
        std::vector<float> h = f.attention(L, x, a);
        x = f.mlp(L, h, a);
    }
    return std::move(a.u);
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
    if (fact.session) {
        if (!fact.session->cuda) fail(MOME_STATUS_INVALID_ARGUMENT, "the session given for a tuning step is not a CUDA session");
        if (fact.session->model != bank.model) fail(MOME_STATUS_INVALID_ARGUMENT, "the CUDA session is of another model than the bank's");
        if (router_gradients) fail(MOME_STATUS_UNSUPPORTED, "router gradients are computed on the CPU only: give no session with them");
        return cuda_fact_gradients(*fact.session, bank, fact);
    }
    const LlamaWeights w = load_llama_weights(*model.file, c);
    const Forward f = make_forward(c, w, pool, n);
    const int64_t D = c.n_embd, l0 = bank.layers[0].block, k = p.top_k, r = p.rank;
    FactGradients g;
    std::vector<LayerActivations> acts(static_cast<size_t>(c.n_layer));
    // The memory layer's input u0 and the residual stream x after its block (before the bank's
    // delta): the frozen layers below give the same for every step, so a caller may keep them.
    std::vector<float> u0, x, query, centred;
    if (fact.prefix) {
        u0.assign(fact.prefix, fact.prefix + n * D);
        x.assign(fact.prefix + n * D, fact.prefix + 2 * n * D);
    } else {
        x = embed_all(w, tokens, n, D);
        for (int64_t l = 0; l <= l0; ++l) {
            const LayerWeights& L = w.layers[static_cast<size_t>(l)];
            LayerActivations& a = acts[static_cast<size_t>(l)];
            std::vector<float> h = f.attention(L, x, a);
            x = f.mlp(L, h, a);
        }
        u0 = acts[static_cast<size_t>(l0)].u;
    }
    if (fact.prefix_out) {
        std::copy(u0.begin(), u0.end(), fact.prefix_out);
        std::copy(x.begin(), x.end(), fact.prefix_out + n * D);
    }

    // The memory layer: route from the question's mean input, as a session asking it would.
    route_fact(bank, fact, u0.data(), pool, n_threads, g, &query, &centred);
    // One segment sharing the route, or one per token.
    std::vector<int64_t> offsets{0};
    for (int64_t t = 1; t <= n; ++t)
        if (per_token || t == n) offsets.push_back(t);
    const int64_t n_segments = static_cast<int64_t>(offsets.size()) - 1;
    {
        LoraTables tables{p.weight_type, p.n_experts, D, p.rank, bank.layers[0].a.data, bank.layers[0].b.data};
        LoraBatch b{u0.data(), n, offsets.data(), n_segments, g.indices.data(), g.weights.data(), p.top_k, p.alpha / static_cast<float>(p.rank)};
        if (cached) check_lora_batch(tables, b);
        std::vector<float> delta(static_cast<size_t>(n * D), 0.0f);
        lora_apply(tables, b, delta.data(), pool);
        for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
    }
    for (int64_t l = l0 + 1; l < c.n_layer; ++l) {
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];
        LayerActivations& a = acts[static_cast<size_t>(l)];
        std::vector<float> h = f.attention(L, x, a);
        x = f.mlp(L, h, a);
    }

    // Loss over answer tokens: position t predicts token t + 1.
    const int64_t first = answer_start - 1, n_out = n - answer_start;
    std::vector<float> normed(static_cast<size_t>(n * D), 0.0f);
    for (int64_t t = first; t < n - 1; ++t)
        rms_norm_ref(x.data() + t * D, w.output_norm.data(), D, c.rms_norm_eps, normed.data() + t * D);
    std::vector<float> rows(normed.begin() + first * D, normed.begin() + (n - 1) * D), logits(static_cast<size_t>(n_out * c.n_vocab));
    std::vector<float> rounded = rows;
    round_activations_like_weights(w.output.type, rounded.data(), n_out * D);
    matmul_fast(w.output, rounded.data(), n_out, logits.data(), pool);
    std::vector<float> dlogits(logits.size());
    for (int64_t i = 0; i < n_out; ++i) {
        const float* row = logits.data() + i * c.n_vocab;
        const int32_t target = tokens[answer_start + i];
        g.loss += cross_entropy_backward(row, c.n_vocab, target, dlogits.data() + i * c.n_vocab);
        int64_t best = 0;
        for (int64_t v = 1; v < c.n_vocab; ++v)
            if (row[v] > row[best]) best = v;
        g.n_correct += best == target;
    }
    g.loss /= static_cast<double>(n_out);
    for (float& d : dlogits) d /= static_cast<float>(n_out);
    g.n_answer = static_cast<int32_t>(n_out);

    // Back through the output projection and the final norm.
    std::vector<float> dnormed(static_cast<size_t>(n_out * D), 0.0f);
    matmul_backward_input(w.output, dlogits.data(), n_out, dnormed.data(), &pool);
    std::vector<float> dx(static_cast<size_t>(n * D), 0.0f);
    for (int64_t i = 0; i < n_out; ++i)
        rms_norm_backward(x.data() + (first + i) * D, w.output_norm.data(), D, c.rms_norm_eps, dnormed.data() + i * D,
                          dx.data() + (first + i) * D);

    // Back through the layers above the memory layer.
    const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, v_dim = c.n_head_kv * c.head_dim_v;
    const int64_t attn_dim = c.n_head * c.head_dim_v;
    for (int64_t l = c.n_layer - 1; l > l0; --l) {
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];
        const LayerActivations& a = acts[static_cast<size_t>(l)];
        // MLP: x_next = h + down(swiglu(gate u, up u)).
        std::vector<float> dact(static_cast<size_t>(n * c.n_ff), 0.0f), dgate(dact.size()), dup(dact.size());
        add_backward_input(L.down, dx, n, dact, pool);
        swiglu_backward(a.gate.data(), a.up.data(), dact.data(), n * c.n_ff, dgate.data(), dup.data());
        std::vector<float> du(static_cast<size_t>(n * D), 0.0f);
        add_backward_input(L.gate, dgate, n, du, pool);
        add_backward_input(L.up, dup, n, du, pool);
        std::vector<float> dh = dx, tmp(static_cast<size_t>(D));
        for (int64_t t = 0; t < n; ++t) {
            rms_norm_backward(a.h.data() + t * D, L.ffn_norm.data(), D, c.rms_norm_eps, du.data() + t * D, tmp.data());
            for (int64_t i = 0; i < D; ++i) dh[static_cast<size_t>(t * D + i)] += tmp[static_cast<size_t>(i)];
        }
        // Attention: h = x + wo(attn(rope(wq xn), rope(wk xn), wv xn)).
        std::vector<float> dattn(static_cast<size_t>(n * attn_dim), 0.0f);
        add_backward_input(L.wo, dh, n, dattn, pool);
        std::vector<float> dq(static_cast<size_t>(n * q_dim), 0.0f), dk(static_cast<size_t>(n * kv_dim), 0.0f),
            dv(static_cast<size_t>(n * v_dim), 0.0f);
        for (int64_t t = 0; t < n; ++t)
            attention_backward(a.q.data() + t * q_dim, a.k.data(), a.v.data(), t + 1, c.n_head, c.n_head_kv, c.head_dim,
                               dattn.data() + t * attn_dim, dq.data() + t * q_dim, dk.data(), dv.data());
        for (int64_t t = 0; t < n; ++t) {
            rope_norm_backward(dq.data() + t * q_dim, c.n_head, c.head_dim, f.pos[static_cast<size_t>(t)], f.rope);
            rope_norm_backward(dk.data() + t * kv_dim, c.n_head_kv, c.head_dim, f.pos[static_cast<size_t>(t)], f.rope);
        }
        std::vector<float> dxn(static_cast<size_t>(n * D), 0.0f);
        add_backward_input(L.wq, dq, n, dxn, pool);
        add_backward_input(L.wk, dk, n, dxn, pool);
        add_backward_input(L.wv, dv, n, dxn, pool);
        dx = dh;
        for (int64_t t = 0; t < n; ++t) {
            rms_norm_backward(a.x.data() + t * D, L.attn_norm.data(), D, c.rms_norm_eps, dxn.data() + t * D, tmp.data());
            for (int64_t i = 0; i < D; ++i) dx[static_cast<size_t>(t * D + i)] += tmp[static_cast<size_t>(i)];
        }
    }

    // Into the routed experts: each distinct one gathered once as F32, then the LoRA backward.
    std::unordered_map<int32_t, int32_t> slot_of;
    std::vector<int32_t> local(g.indices.size());
    for (size_t i = 0; i < g.indices.size(); ++i) {
        const auto [at, added] = slot_of.emplace(g.indices[i], static_cast<int32_t>(g.experts.size()));
        if (added) g.experts.push_back(g.indices[i]);
        local[i] = at->second;
    }
    const int64_t per_expert = r * D, n_distinct = static_cast<int64_t>(g.experts.size());
    std::vector<float> a_local(static_cast<size_t>(n_distinct * per_expert)), b_local(a_local.size());
    for (int64_t j = 0; j < n_distinct; ++j) {
        const int64_t first = static_cast<int64_t>(g.experts[static_cast<size_t>(j)]) * per_expert;
        read_floats(bank.layers[0].a, first, per_expert, a_local.data() + j * per_expert);
        read_floats(bank.layers[0].b, first, per_expert, b_local.data() + j * per_expert);
    }
    const LoraTables tables{MOME_TENSOR_TYPE_F32, n_distinct, D, p.rank, reinterpret_cast<const uint8_t*>(a_local.data()),
                            reinterpret_cast<const uint8_t*>(b_local.data())};
    const LoraBatch b{u0.data(), n, offsets.data(), n_segments, local.data(), g.weights.data(), p.top_k, p.alpha / static_cast<float>(p.rank)};
    g.da.assign(a_local.size(), 0.0f);
    g.db.assign(b_local.size(), 0.0f);
    if (per_token || n_distinct != k) {
        lora_backward(tables, b, dx.data(), g.da.data(), g.db.data(), nullptr);
    } else {
        // One route of distinct experts for all tokens: each chunk owns one expert's rows.
        pool.run(k, [&](int64_t j) {
            LoraBatch one = b;
            one.indices = local.data() + j;
            one.weights = g.weights.data() + j;
            one.top_k = 1;
            lora_backward(tables, one, dx.data(), g.da.data(), g.db.data(), nullptr);
        });
    }
    if (router_gradients) router_backward(bank, u0, n, dx, a_local, b_local, query, centred, g);
    return g;
}

}  // namespace mome
