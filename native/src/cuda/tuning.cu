// One memory-tuning step on CUDA: the fact's forward pass on the device with the weights of
// a CUDA session (keeping the activations of the layers above the memory layer), the route
// made on the host by the bank's router as the CPU step makes it, the routed experts copied
// to the device as F32, then the backward through those layers into the experts' A and B.
// Computes what fact_gradients (memory/tuning.cpp) computes; backend_ops compares the two.
#include <numeric>
#include <vector>

#include "core/cuda_backend.h"
#include "cuda/backward_ops.h"
#include "cuda/cuda_check.h"
#include "cuda/model_ops.h"
#include "cuda/session_state.h"
#include "memory/memory_layer.h"
#include "memory/tuning.h"
#include "model/session.h"

namespace mome {

namespace {

// Device memory for one step, freed together at its end.
class Arena {
public:
    explicit Arena(cudaStream_t stream) : stream_(stream) {}
    ~Arena() {
        for (void* p : blocks_) cudaFreeAsync(p, stream_);
    }
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    float* floats(int64_t n, bool zero = false) {
        void* p = nullptr;
        MOME_CUDA(cudaMallocAsync(&p, static_cast<uint64_t>(std::max<int64_t>(n, 1)) * sizeof(float), stream_));
        blocks_.push_back(p);
        if (zero) MOME_CUDA(cudaMemsetAsync(p, 0, static_cast<uint64_t>(n) * sizeof(float), stream_));
        return static_cast<float*>(p);
    }
    template <typename T>
    T* upload(const std::vector<T>& host) {
        void* p = nullptr;
        MOME_CUDA(cudaMallocAsync(&p, std::max<size_t>(host.size(), 1) * sizeof(T), stream_));
        blocks_.push_back(p);
        MOME_CUDA(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream_));
        return static_cast<T*>(p);
    }

private:
    cudaStream_t stream_;
    std::vector<void*> blocks_;
};

template <typename T>
std::vector<T> download(const T* device, int64_t n, cudaStream_t stream) {
    std::vector<T> host(static_cast<size_t>(n));
    MOME_CUDA(cudaMemcpyAsync(host.data(), device, host.size() * sizeof(T), cudaMemcpyDeviceToHost, stream));
    MOME_CUDA(cudaStreamSynchronize(stream));
    return host;
}

// What one layer above the memory layer keeps for its backward.
struct Activations {
    float *x, *xn, *q, *k, *v, *attn, *h, *u, *gate, *up;
};

}  // namespace

FactGradients cuda_fact_gradients(mome_session& session, const mome_bank& bank, const FactInput& fact) {
    CudaSession& cs = *session.cuda;
    const mome_llama_config& c = session.config;
    const mome_bank_params& p = bank.params;
    DeviceScope scope(cs.device);
    const cudaStream_t stream = cs.stream;
    const int64_t n = fact.n, answer_start = fact.answer_start, D = c.n_embd, k = p.top_k, r = p.rank;
    const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, n_ff = c.n_ff, l0 = bank.layers[0].block;
    if (p.routing != MOME_ROUTING_MODE_SEQUENCE)
        fail(MOME_STATUS_UNSUPPORTED, "tuning steps on CUDA serve banks that route per sequence; tune per-token banks on the CPU");
    if (n > cuda_attention_max_positions())
        fail(MOME_STATUS_UNSUPPORTED, format("a fact of %lld tokens is longer than CUDA attention holds", static_cast<long long>(n)));
    Arena arena(stream);
    std::vector<int32_t> ints(fact.tokens, fact.tokens + n);
    for (int64_t t = 0; t < n; ++t) ints.push_back(static_cast<int32_t>(t));      // positions
    for (int64_t t = 0; t < n; ++t) ints.push_back(static_cast<int32_t>(t + 1));  // visible positions (causal)
    const int32_t* d_ints = arena.upload(ints);
    const int32_t *tokens = d_ints, *positions = d_ints + n, *visible = d_ints + 2 * n;
    const CudaRope rope{c.n_rot, c.rope_freq_base, c.rope_freq_scale, cs.rope_freqs};

    // One layer's forward; `keep` receives its activations (its buffers are the step's).
    auto layer = [&](const DeviceLayer& L, float* x, Activations& a) {
        a.x = arena.floats(n * D), a.xn = arena.floats(n * D), a.q = arena.floats(n * q_dim), a.k = arena.floats(n * kv_dim);
        a.v = arena.floats(n * kv_dim), a.attn = arena.floats(n * q_dim), a.h = arena.floats(n * D), a.u = arena.floats(n * D);
        a.gate = arena.floats(n * n_ff), a.up = arena.floats(n * n_ff);
        float* o = arena.floats(n * D);
        float* act = arena.floats(n * n_ff);
        MOME_CUDA(cudaMemcpyAsync(a.x, x, n * D * sizeof(float), cudaMemcpyDeviceToDevice, stream));
        cuda_rms_norm(x, L.attn_norm, n, D, c.rms_norm_eps, a.xn, stream);
        cuda_matmul(L.wq, a.xn, n, a.q, stream);
        cuda_matmul(L.wk, a.xn, n, a.k, stream);
        cuda_matmul(L.wv, a.xn, n, a.v, stream);
        cuda_rope_norm(a.q, n, c.n_head, c.head_dim, positions, rope, stream);
        cuda_rope_norm(a.k, n, c.n_head_kv, c.head_dim, positions, rope, stream);
        cuda_attention(a.q, a.k, a.v, nullptr, n, visible, n, c.n_head, c.n_head_kv, c.head_dim, n, a.attn, stream);
        cuda_matmul(L.wo, a.attn, n, o, stream);
        cuda_add(x, o, n * D, stream);
        MOME_CUDA(cudaMemcpyAsync(a.h, x, n * D * sizeof(float), cudaMemcpyDeviceToDevice, stream));
        cuda_rms_norm(x, L.ffn_norm, n, D, c.rms_norm_eps, a.u, stream);
        cuda_matmul(L.gate, a.u, n, a.gate, stream);
        cuda_matmul(L.up, a.u, n, a.up, stream);
        cuda_swiglu(a.gate, a.up, n * n_ff, act, stream);
        cuda_matmul(L.down, act, n, o, stream);
        cuda_add(x, o, n * D, stream);
    };

    FactGradients g;
    std::vector<Activations> acts(static_cast<size_t>(c.n_layer));
    float* x = arena.floats(n * D);
    float* u0 = nullptr;
    if (fact.prefix) {
        u0 = arena.floats(n * D);
        MOME_CUDA(cudaMemcpyAsync(u0, fact.prefix, n * D * sizeof(float), cudaMemcpyHostToDevice, stream));
        MOME_CUDA(cudaMemcpyAsync(x, fact.prefix + n * D, n * D * sizeof(float), cudaMemcpyHostToDevice, stream));
    } else {
        cuda_embed(cs.token_embd, tokens, n, x, stream);
        for (int64_t l = 0; l <= l0; ++l) layer(cs.layers[static_cast<size_t>(l)], x, acts[static_cast<size_t>(l)]);
        u0 = acts[static_cast<size_t>(l0)].u;
    }
    const std::vector<float> host_u0 = download(u0, n * D, stream);
    if (fact.prefix_out) {
        std::copy(host_u0.begin(), host_u0.end(), fact.prefix_out);
        const std::vector<float> host_x = download(x, n * D, stream);
        std::copy(host_x.begin(), host_x.end(), fact.prefix_out + n * D);
    }

    // The route, on the host, as the CPU step makes it.
    route_fact(bank, fact, host_u0.data(), *session.pool, session.n_threads, g, nullptr, nullptr);
    for (int32_t e : g.indices)
        if (e < 0 || e >= p.n_experts) fail(MOME_STATUS_OUT_OF_RANGE, format("cached route: expert %d is outside the bank", e));
    // The routed experts as F32 tables in route order, and the memory layer's delta.
    const int64_t per_expert = r * D;
    std::vector<float> a_local(static_cast<size_t>(k * per_expert)), b_local(a_local.size());
    for (int64_t j = 0; j < k; ++j) {
        const int64_t first = static_cast<int64_t>(g.indices[static_cast<size_t>(j)]) * per_expert;
        read_floats(bank.layers[0].a, first, per_expert, a_local.data() + j * per_expert);
        read_floats(bank.layers[0].b, first, per_expert, b_local.data() + j * per_expert);
    }
    float* d_a = arena.upload(a_local);
    float* d_b = arena.upload(b_local);
    float* d_w = arena.upload(g.weights);
    std::vector<int32_t> local(static_cast<size_t>(k));
    std::iota(local.begin(), local.end(), 0);
    const int32_t* d_local = arena.upload(local);
    const std::vector<int64_t> offsets = {0, n};
    const int64_t* d_offsets = arena.upload(offsets);
    const float scale = p.alpha / static_cast<float>(p.rank);
    const mome_lora_desc experts{MOME_TENSOR_TYPE_F32, k, D, static_cast<int32_t>(r), d_a, d_b};
    cuda_lora_apply(cs.device, experts, u0, n, d_offsets, 1, d_local, d_w, static_cast<int32_t>(k), scale, x, stream);

    for (int64_t l = l0 + 1; l < c.n_layer; ++l) layer(cs.layers[static_cast<size_t>(l)], x, acts[static_cast<size_t>(l)]);

    // Loss over the answer: positions answer_start-1 .. n-2 predict tokens answer_start .. n-1.
    const int64_t first = answer_start - 1, n_out = n - answer_start;
    float* normed = arena.floats(n_out * D);
    float* logits = arena.floats(n_out * c.n_vocab);
    float* dlogits = arena.floats(n_out * c.n_vocab);
    float* losses = arena.floats(n_out);
    cuda_rms_norm(x + first * D, cs.output_norm, n_out, D, c.rms_norm_eps, normed, stream);
    cuda_matmul(cs.output, normed, n_out, logits, stream);
    const int32_t* targets = tokens + answer_start;
    cuda_cross_entropy_backward(logits, targets, n_out, c.n_vocab, dlogits, losses, stream);
    cuda_scale(dlogits, 1.0f / static_cast<float>(n_out), n_out * c.n_vocab, stream);
    std::vector<int32_t> best_host;
    {
        const std::vector<int32_t> none(static_cast<size_t>(n_out), 0);
        int32_t* best = arena.upload(none);
        cuda_argmax_rows(logits, n_out, c.n_vocab, best, stream);
        best_host = download(best, n_out, stream);
    }
    const std::vector<float> loss_host = download(losses, n_out, stream);
    for (int64_t i = 0; i < n_out; ++i) {
        g.loss += loss_host[static_cast<size_t>(i)];
        g.n_correct += best_host[static_cast<size_t>(i)] == fact.tokens[answer_start + i];
    }
    g.loss /= static_cast<double>(n_out);
    g.n_answer = static_cast<int32_t>(n_out);

    // Back through the output projection and the final norm.
    float* dnormed = arena.floats(n_out * D, true);
    cuda_matmul_backward_input(cs.output.data, cs.output.type, cs.output.rows, cs.output.cols, dlogits, n_out, dnormed, stream);
    float* dx = arena.floats(n * D, true);
    cuda_rms_norm_backward(x + first * D, cs.output_norm, dnormed, n_out, D, c.rms_norm_eps, dx + first * D, stream);

    // Back through the layers above the memory layer.
    float* tmp = arena.floats(n * D);
    for (int64_t l = c.n_layer - 1; l > l0; --l) {
        const DeviceLayer& L = cs.layers[static_cast<size_t>(l)];
        const Activations& a = acts[static_cast<size_t>(l)];
        float* dact = arena.floats(n * n_ff, true);
        float* dgate = arena.floats(n * n_ff);
        float* dup = arena.floats(n * n_ff);
        float* du = arena.floats(n * D, true);
        cuda_matmul_backward_input(L.down.data, L.down.type, L.down.rows, L.down.cols, dx, n, dact, stream);
        cuda_swiglu_backward(a.gate, a.up, dact, n * n_ff, dgate, dup, stream);
        cuda_matmul_backward_input(L.gate.data, L.gate.type, L.gate.rows, L.gate.cols, dgate, n, du, stream);
        cuda_matmul_backward_input(L.up.data, L.up.type, L.up.rows, L.up.cols, dup, n, du, stream);
        cuda_rms_norm_backward(a.h, L.ffn_norm, du, n, D, c.rms_norm_eps, tmp, stream);
        cuda_add(dx, tmp, n * D, stream);  // dx is now dh
        float* dattn = arena.floats(n * q_dim, true);
        float* dq = arena.floats(n * q_dim);
        float* dk = arena.floats(n * kv_dim, true);
        float* dv = arena.floats(n * kv_dim, true);
        float* dxn = arena.floats(n * D, true);
        cuda_matmul_backward_input(L.wo.data, L.wo.type, L.wo.rows, L.wo.cols, dx, n, dattn, stream);
        cuda_attention_backward(a.q, a.k, a.v, visible, n, c.n_head, c.n_head_kv, c.head_dim, n, dattn, dq, dk, dv, stream);
        cuda_rope_norm_backward(dq, n, c.n_head, c.head_dim, positions, rope, stream);
        cuda_rope_norm_backward(dk, n, c.n_head_kv, c.head_dim, positions, rope, stream);
        cuda_matmul_backward_input(L.wq.data, L.wq.type, L.wq.rows, L.wq.cols, dq, n, dxn, stream);
        cuda_matmul_backward_input(L.wk.data, L.wk.type, L.wk.rows, L.wk.cols, dk, n, dxn, stream);
        cuda_matmul_backward_input(L.wv.data, L.wv.type, L.wv.rows, L.wv.cols, dv, n, dxn, stream);
        cuda_rms_norm_backward(a.x, L.attn_norm, dxn, n, D, c.rms_norm_eps, tmp, stream);
        cuda_add(dx, tmp, n * D, stream);
    }

    // Into the routed experts.
    float* da = arena.floats(k * per_expert);
    float* db = arena.floats(k * per_expert);
    cuda_lora_backward(d_a, d_b, d_w, k, r, D, scale, u0, dx, n, da, db, stream);
    g.da = download(da, k * per_expert, stream);
    g.db = download(db, k * per_expert, stream);
    g.experts = g.indices;
    return g;
}

}  // namespace mome
