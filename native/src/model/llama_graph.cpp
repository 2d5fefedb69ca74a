#include "model/llama_graph.h"

#include "core/abort.h"
#include "core/error.h"

namespace mome {

namespace {

struct Dims {
    int64_t d, q_dim, kv_dim, n_ff;
};

Dims dims_of(const mome_llama_config& c) { return {c.n_embd, c.n_head * c.head_dim, c.n_head_kv * c.head_dim, c.n_ff}; }

AttentionShape attention_shape(const mome_llama_config& c, const KvCache& cache) {
    return AttentionShape{c.n_head, c.n_head_kv, c.head_dim, cache.n_ctx};
}

// The arrays one block computes in: its own when kept for the backward, else shared scratch.
struct BlockArrays {
    float *x = nullptr, *xn, *q, *k, *v, *attn, *o, *h = nullptr, *u, *gate, *up, *act, *memory;
};

const ProjectionTraining* projection(const GraphTraining* training, int64_t layer, Projection p) {
    return training ? &training->layers[static_cast<size_t>(layer)].proj[p] : nullptr;
}

// Y = X W^T over the batch's rows, each summed as the call it stands for.
void project(Backend& be, const GraphBatch& batch, const Tensor& W, const float* X, float* Y) {
    if (batch.calls) be.matmul_calls(W, X, batch.n, *batch.calls, Y);
    else be.matmul(W, X, batch.n, Y);
}

// Y [n x W.rows] += scale (X A^T) B^T, when the projection has an adapter.
void adapter_forward(Backend& be, const ProjectionTraining* p, const float* X, int64_t n, float* Y) {
    if (!p || !p->a.data) return;
    const int64_t rank = p->a.rows, out = p->b.rows;
    Buffer z = floats(be, n * rank), delta = floats(be, n * out);
    be.matmul(p->a, X, n, z.as());
    be.matmul(p->b, z.as(), n, delta.as());
    be.scale(delta.as(), p->scale, n * out);
    be.add(Y, delta.as(), n * out);
}

// Back through Y = X W^T (+ its adapter): dX += dY W (+ the adapter's path), and the weight
// and adapter gradients asked for: dW += dY^T X; with z = X A^T, dB += scale dY^T z and
// dA += dz^T X for dz = scale dY B.
void projection_backward(Backend& be, const Tensor& W, const ProjectionTraining* p, const float* X, const float* dY, int64_t n, float* dX) {
    be.matmul_backward_input(W, dY, n, dX);
    if (!p) return;
    if (p->dw) be.matmul_backward_weight(dY, X, n, W.rows, W.cols, p->dw);
    if (!p->a.data) return;
    const int64_t rank = p->a.rows;
    Buffer z = floats(be, n * rank), dz = floats(be, n * rank, true);
    be.matmul(p->a, X, n, z.as());
    be.scale(z.as(), p->scale, n * rank);
    if (p->db) be.matmul_backward_weight(dY, z.as(), n, W.rows, rank, p->db);
    be.matmul_backward_input(p->b, dY, n, dz.as());
    be.scale(dz.as(), p->scale, n * rank);
    if (p->da) be.matmul_backward_weight(dz.as(), X, n, rank, W.cols, p->da);
    be.matmul_backward_input(p->a, dz.as(), n, dX);
}

}  // namespace

GraphInputs::GraphInputs(Backend& backend, const int32_t* tokens, const int32_t* positions, const int32_t* seq_ids, int64_t n) {
    std::vector<int32_t> ints(static_cast<size_t>(4 * n), 0);
    for (int64_t t = 0; t < n; ++t) {
        ints[static_cast<size_t>(t)] = tokens[t];
        ints[static_cast<size_t>(n + t)] = positions[t];
        ints[static_cast<size_t>(2 * n + t)] = seq_ids ? seq_ids[t] : 0;
        ints[static_cast<size_t>(3 * n + t)] = positions[t] + 1;
    }
    ints_ = upload(backend, ints);
    const int32_t* p = ints_.as<int32_t>();
    batch_ = GraphBatch{n, p, p + n, p + 2 * n, p + 3 * n};
}

KvCache make_kv_cache(Backend& backend, const mome_llama_config& c, int64_t n_seq, int64_t n_ctx) {
    if (c.head_dim_v != c.head_dim)
        fail(MOME_STATUS_UNSUPPORTED, format("key heads of %lld and value heads of %lld values: Mome needs equal sizes",
                                             static_cast<long long>(c.head_dim), static_cast<long long>(c.head_dim_v)));
    KvCache cache;
    cache.n_seq = n_seq, cache.n_ctx = n_ctx;
    const int64_t per_layer = n_seq * n_ctx * c.n_head_kv * c.head_dim;
    for (int64_t l = 0; l < c.n_layer; ++l) {
        cache.k.push_back(floats(backend, per_layer, true));
        cache.v.push_back(floats(backend, per_layer, true));
    }
    return cache;
}

RopeParams rope_params(const mome_llama_config& c, const LlamaWeights& w) {
    RopeParams rope;
    rope.n_rot = c.n_rot;
    rope.freq_base = c.rope_freq_base;
    rope.freq_scale = c.rope_freq_scale;
    rope.freq_factors = w.rope_freqs.data ? w.rope_freqs.f32() : nullptr;
    return rope;
}

void llama_embed(Backend& backend, const LlamaWeights& w, const GraphBatch& batch, float* x) {
    backend.embed(w.token_embd, batch.tokens, batch.n, x);
}

void llama_forward(Backend& be, const mome_llama_config& c, const LlamaWeights& w, const GraphBatch& batch, KvCache& cache,
                   int64_t first, int64_t end, float* x, MemoryHook* memory, std::vector<LayerActivations>* keep,
                   const GraphTraining* training) {
    const Dims d = dims_of(c);
    const int64_t n = batch.n;
    const RopeParams rope = rope_params(c, w);
    const AttentionShape shape = attention_shape(c, cache);
    // Shared scratch for what a block does not keep.
    Buffer s_xn = floats(be, n * d.d), s_q = floats(be, n * d.q_dim), s_k = floats(be, n * d.kv_dim), s_v = floats(be, n * d.kv_dim);
    Buffer s_attn = floats(be, n * d.q_dim), s_o = floats(be, n * d.d), s_u = floats(be, n * d.d), s_gate = floats(be, n * d.n_ff);
    Buffer s_up = floats(be, n * d.n_ff), s_act = floats(be, n * d.n_ff), s_memory = floats(be, memory ? n * d.d : 1);

    for (int64_t l = first; l < end; ++l) {
        check_abort();
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];
        BlockArrays a{nullptr,        s_xn.as(), s_q.as(),   s_k.as(),  s_v.as(),  s_attn.as(), s_o.as(), nullptr,
                      s_u.as(),       s_gate.as(), s_up.as(), s_act.as(), s_memory.as()};
        if (keep) {
            LayerActivations& k = (*keep)[static_cast<size_t>(l)];
            k.x = floats(be, n * d.d), k.xn = floats(be, n * d.d), k.q = floats(be, n * d.q_dim), k.attn = floats(be, n * d.q_dim);
            k.h = floats(be, n * d.d), k.u = floats(be, n * d.d), k.gate = floats(be, n * d.n_ff), k.up = floats(be, n * d.n_ff);
            a.x = k.x.as(), a.xn = k.xn.as(), a.q = k.q.as(), a.attn = k.attn.as(), a.h = k.h.as(), a.u = k.u.as();
            a.gate = k.gate.as(), a.up = k.up.as();
            be.copy(a.x, x, static_cast<uint64_t>(n * d.d) * sizeof(float));
        }
        // Attention.
        be.rms_norm(x, L.attn_norm, n, c.rms_norm_eps, a.xn);
        project(be, batch, L.wq, a.xn, a.q);
        project(be, batch, L.wk, a.xn, a.k);
        project(be, batch, L.wv, a.xn, a.v);
        adapter_forward(be, projection(training, l, kProjWq), a.xn, n, a.q);
        adapter_forward(be, projection(training, l, kProjWk), a.xn, n, a.k);
        adapter_forward(be, projection(training, l, kProjWv), a.xn, n, a.v);
        be.rope(a.q, n, c.n_head, c.head_dim, batch.positions, rope);
        be.rope(a.k, n, c.n_head_kv, c.head_dim, batch.positions, rope);
        float* k_cache = cache.k[static_cast<size_t>(l)].as();
        float* v_cache = cache.v[static_cast<size_t>(l)].as();
        be.store_kv(a.k, a.v, batch.seq_ids, batch.positions, n, d.kv_dim, d.kv_dim, cache.n_ctx, k_cache, v_cache);
        if (batch.calls) be.attention_calls(a.q, k_cache, v_cache, batch.seq_ids, batch.visible, n, shape, *batch.calls, a.attn);
        else be.attention(a.q, k_cache, v_cache, batch.seq_ids, batch.visible, n, shape, a.attn);
        project(be, batch, L.wo, a.attn, a.o);
        adapter_forward(be, projection(training, l, kProjWo), a.attn, n, a.o);
        be.add(x, a.o, n * d.d);
        if (a.h) be.copy(a.h, x, static_cast<uint64_t>(n * d.d) * sizeof(float));

        // MLP, and the memory layer beside it on the same normalised input.
        be.rms_norm(x, L.ffn_norm, n, c.rms_norm_eps, a.u);
        const bool has_memory = memory && memory->memory_delta(l, a.u, n, a.memory);
        project(be, batch, L.gate, a.u, a.gate);
        project(be, batch, L.up, a.u, a.up);
        adapter_forward(be, projection(training, l, kProjGate), a.u, n, a.gate);
        adapter_forward(be, projection(training, l, kProjUp), a.u, n, a.up);
        be.swiglu(a.gate, a.up, n * d.n_ff, a.act);
        project(be, batch, L.down, a.act, a.o);
        adapter_forward(be, projection(training, l, kProjDown), a.act, n, a.o);
        be.add(x, a.o, n * d.d);
        if (has_memory) be.add(x, a.memory, n * d.d);
    }
}

void llama_logits(Backend& be, const mome_llama_config& c, const LlamaWeights& w, const float* x, const int32_t* rows, int64_t n_rows,
                  float* logits) {
    if (n_rows < 1) return;
    Buffer picked = floats(be, n_rows * c.n_embd), normed = floats(be, n_rows * c.n_embd);
    be.gather_rows(x, rows, n_rows, c.n_embd, picked.as());
    be.rms_norm(picked.as(), w.output_norm, n_rows, c.rms_norm_eps, normed.as());
    be.matmul(w.output, normed.as(), n_rows, logits);
}

void llama_backward_from(Backend& be, const mome_llama_config& c, const LlamaWeights& w, const GraphBatch& batch,
                         const std::vector<int64_t>& seq_starts, const KvCache& cache, const std::vector<LayerActivations>& keep,
                         int64_t first, int64_t end, float* dx, MemoryHook* memory, const GraphTraining* training) {
    require_arg(seq_starts.size() >= 2 && seq_starts.front() == 0 && seq_starts.back() == batch.n, "the sequences cover the batch");
    const Dims d = dims_of(c);
    const int64_t n = batch.n;
    const RopeParams rope = rope_params(c, w);
    const AttentionShape shape = attention_shape(c, cache);
    Buffer dact = floats(be, n * d.n_ff), dgate = floats(be, n * d.n_ff), dup = floats(be, n * d.n_ff);
    Buffer du = floats(be, n * d.d), tmp = floats(be, n * d.d), dattn = floats(be, n * d.q_dim), dq = floats(be, n * d.q_dim);
    Buffer dk = floats(be, n * d.kv_dim), dv = floats(be, n * d.kv_dim), dxn = floats(be, n * d.d);
    Buffer act = floats(be, training ? n * d.n_ff : 1);  // the down projection's input, for its weight's gradients
    const auto zero = [&](const Buffer& b, int64_t count) { be.zero(b.as<void>(), static_cast<uint64_t>(count) * sizeof(float)); };

    for (int64_t l = end - 1; l >= first; --l) {
        check_abort();
        const LayerWeights& L = w.layers[static_cast<size_t>(l)];
        const LayerActivations& a = keep[static_cast<size_t>(l)];
        // MLP: x' = h + down(swiglu(gate u, up u)); dx becomes dh.
        const LayerTraining* lt = training ? &training->layers[static_cast<size_t>(l)] : nullptr;
        zero(dact, n * d.n_ff);
        if (training) be.swiglu(a.gate.as(), a.up.as(), n * d.n_ff, act.as());
        projection_backward(be, L.down, projection(training, l, kProjDown), act.as(), dx, n, dact.as());
        be.swiglu_backward(a.gate.as(), a.up.as(), dact.as(), n * d.n_ff, dgate.as(), dup.as());
        zero(du, n * d.d);
        projection_backward(be, L.gate, projection(training, l, kProjGate), a.u.as(), dgate.as(), n, du.as());
        projection_backward(be, L.up, projection(training, l, kProjUp), a.u.as(), dup.as(), n, du.as());
        if (memory) memory->memory_backward(l, dx, n, du.as());  // the memory layer beside the MLP, on the same u
        if (lt && lt->d_ffn_norm) be.rms_norm_backward_weight(a.h.as(), du.as(), n, d.d, c.rms_norm_eps, lt->d_ffn_norm);
        be.rms_norm_backward(a.h.as(), L.ffn_norm, du.as(), n, c.rms_norm_eps, tmp.as());
        be.add(dx, tmp.as(), n * d.d);
        // Attention: h = x + wo(attention(rope(wq xn), rope(wk xn), wv xn)); dx becomes dx.
        zero(dattn, n * d.q_dim);
        projection_backward(be, L.wo, projection(training, l, kProjWo), a.attn.as(), dx, n, dattn.as());
        zero(dk, n * d.kv_dim);
        zero(dv, n * d.kv_dim);
        // One sequence at a time: its queries, cache rows and key/value gradients.
        for (size_t s = 0; s + 1 < seq_starts.size(); ++s) {
            const int64_t t0 = seq_starts[s], len = seq_starts[s + 1] - t0, cached = static_cast<int64_t>(s) * cache.n_ctx * d.kv_dim;
            be.attention_backward(a.q.as() + t0 * d.q_dim, cache.k[static_cast<size_t>(l)].as() + cached,
                                  cache.v[static_cast<size_t>(l)].as() + cached, batch.visible + t0, len, shape,
                                  dattn.as() + t0 * d.q_dim, dq.as() + t0 * d.q_dim, dk.as() + t0 * d.kv_dim, dv.as() + t0 * d.kv_dim);
        }
        be.rope_backward(dq.as(), n, c.n_head, c.head_dim, batch.positions, rope);
        be.rope_backward(dk.as(), n, c.n_head_kv, c.head_dim, batch.positions, rope);
        zero(dxn, n * d.d);
        projection_backward(be, L.wq, projection(training, l, kProjWq), a.xn.as(), dq.as(), n, dxn.as());
        projection_backward(be, L.wk, projection(training, l, kProjWk), a.xn.as(), dk.as(), n, dxn.as());
        projection_backward(be, L.wv, projection(training, l, kProjWv), a.xn.as(), dv.as(), n, dxn.as());
        if (lt && lt->d_attn_norm) be.rms_norm_backward_weight(a.x.as(), dxn.as(), n, d.d, c.rms_norm_eps, lt->d_attn_norm);
        be.rms_norm_backward(a.x.as(), L.attn_norm, dxn.as(), n, c.rms_norm_eps, tmp.as());
        be.add(dx, tmp.as(), n * d.d);
    }
}

std::vector<LossResult> llama_loss(Backend& be, const mome_llama_config& c, const LlamaWeights& w, const float* x, int64_t n,
                                   const std::vector<AnswerSpan>& spans, const std::vector<int32_t>& targets, bool skip_exact,
                                   float* dx, const GraphTraining* training, int64_t backward_above) {
    const int64_t D = c.n_embd, V = c.n_vocab;
    std::vector<int32_t> rows;
    for (const AnswerSpan& s : spans)
        for (int64_t i = 0; i < s.n_answer; ++i) rows.push_back(static_cast<int32_t>(s.first_row + i));
    const int64_t R = static_cast<int64_t>(rows.size());
    require_arg(static_cast<int64_t>(targets.size()) == R, "one target per answer row");
    const Buffer d_rows = upload(be, rows), d_targets = upload(be, targets);
    Buffer picked = floats(be, R * D), normed = floats(be, R * D), logits = floats(be, R * V), dlogits = floats(be, R * V);
    Buffer losses = floats(be, R), best(be, static_cast<uint64_t>(R) * sizeof(int32_t)), dnormed = floats(be, R * D, true);
    be.gather_rows(x, d_rows.as<int32_t>(), R, D, picked.as());
    be.rms_norm(picked.as(), w.output_norm, R, c.rms_norm_eps, normed.as());
    // Each answer row as a session's one-row call computes it (the prefill's last row, or a
    // decode step).
    be.matmul_calls(w.output, normed.as(), R, std::vector<int64_t>(static_cast<size_t>(R), 1), logits.as());
    be.cross_entropy_backward(logits.as(), d_targets.as<int32_t>(), R, V, dlogits.as(), losses.as());
    be.argmax_rows(logits.as(), R, V, best.as<int32_t>());
    const std::vector<float> loss = download(be, losses.as(), R);
    const std::vector<int32_t> picks = download(be, best.as<int32_t>(), R);

    // Per fact: its mean loss and hits; its rows of dlogits scaled to the mean (or zeroed).
    std::vector<LossResult> results;
    int64_t at = 0;
    for (const AnswerSpan& s : spans) {
        LossResult r;
        for (int64_t i = 0; i < s.n_answer; ++i, ++at) {
            const float row_loss = loss[static_cast<size_t>(at)];
            const bool hit = picks[static_cast<size_t>(at)] == targets[static_cast<size_t>(at)];
            r.loss += row_loss;
            r.n_correct += hit;
            r.n_sure += hit && row_loss <= kRecallMarginLoss;
        }
        r.loss /= static_cast<double>(s.n_answer);
        r.n_answer = static_cast<int32_t>(s.n_answer);
        float* d = dlogits.as() + (at - s.n_answer) * V;
        if (!(skip_exact && r.exact())) be.scale(d, 1.0f / static_cast<float>(s.n_answer), s.n_answer * V);
        results.push_back(r);
    }
    // The rows whose gradient counts (an exact fact's are zeros when skipped: left out).
    std::vector<int32_t> keep;  // indices into rows
    int64_t learning = 0;
    at = 0;
    for (size_t f = 0; f < spans.size(); ++f) {
        const bool counts = !(skip_exact && results[f].exact());
        learning += counts;
        for (int64_t i = 0; i < spans[f].n_answer; ++i, ++at)
            if (counts) keep.push_back(static_cast<int32_t>(at));
    }
    if (backward_above >= 0 && learning <= backward_above) return results;  // dx untouched: the caller runs no backward here
    be.zero(dx, static_cast<uint64_t>(n * D) * sizeof(float));
    const int64_t K = static_cast<int64_t>(keep.size());
    if (K == 0) return results;
    // Back through the output projection and the final norm, into the answer rows of dx.
    const float *dl = dlogits.as(), *nm = normed.as(), *pk = picked.as();
    const int32_t* xr = d_rows.as<int32_t>();
    Buffer k_dl, k_nm, k_pk, k_rows;
    if (K < R) {
        std::vector<int32_t> kept_rows;
        for (const int32_t i : keep) kept_rows.push_back(rows[static_cast<size_t>(i)]);
        const Buffer d_keep = upload(be, keep);
        k_rows = upload(be, kept_rows);
        k_dl = floats(be, K * V), k_nm = floats(be, K * D), k_pk = floats(be, K * D);
        be.gather_rows(dl, d_keep.as<int32_t>(), K, V, k_dl.as());
        be.gather_rows(nm, d_keep.as<int32_t>(), K, D, k_nm.as());
        be.gather_rows(pk, d_keep.as<int32_t>(), K, D, k_pk.as());
        dl = k_dl.as(), nm = k_nm.as(), pk = k_pk.as(), xr = k_rows.as<int32_t>();
    }
    be.matmul_backward_input(w.output, dl, K, dnormed.as());
    if (training && training->d_output) be.matmul_backward_weight(dl, nm, K, V, D, training->d_output);
    if (training && training->d_output_norm) be.rms_norm_backward_weight(pk, dnormed.as(), K, D, c.rms_norm_eps, training->d_output_norm);
    Buffer dpicked = floats(be, K * D);
    be.rms_norm_backward(pk, w.output_norm, dnormed.as(), K, c.rms_norm_eps, dpicked.as());
    be.scatter_rows(dpicked.as(), xr, K, D, dx);
    return results;
}

LlamaWeights weights_on(Backend& be, const LlamaWeights& host) {
    LlamaWeights w;
    w.token_embd = be.to_device(host.token_embd);
    w.output = host.output.data == host.token_embd.data ? w.token_embd : be.to_device(host.output);
    w.output_norm = be.to_device(host.output_norm);
    if (host.rope_freqs.data) w.rope_freqs = be.to_device(host.rope_freqs);
    for (const LayerWeights& L : host.layers) {
        LayerWeights d;
        d.attn_norm = be.to_device(L.attn_norm), d.ffn_norm = be.to_device(L.ffn_norm);
        d.wq = be.to_device(L.wq), d.wk = be.to_device(L.wk), d.wv = be.to_device(L.wv), d.wo = be.to_device(L.wo);
        d.gate = be.to_device(L.gate), d.up = be.to_device(L.up), d.down = be.to_device(L.down);
        w.layers.push_back(d);
    }
    return w;
}

}  // namespace mome
