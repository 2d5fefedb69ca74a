#include "model/session.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "core/abi_enum.h"
#include "core/error.h"
#include "cpu/ops.h"
#include "memory/memory_layer.h"
#include "model/llama_config.h"
#include "model/synthetic.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"

namespace mome {

namespace {

// Refuse caches beyond this many bytes instead of letting an absurd n_ctx exhaust memory.
constexpr uint64_t kMaxCacheBytes = uint64_t(64) << 30;

struct Dims {
    int64_t d, q_dim, kv_dim, v_dim, attn_out, n_ff, n_vocab;
};

Dims dims_of(const mome_llama_config& c) {
    return {c.n_embd, c.n_head * c.head_dim, c.n_head_kv * c.head_dim, c.n_head_kv * c.head_dim_v,
            c.n_head * c.head_dim_v, c.n_ff, c.n_vocab};
}

// Y = X * W^T after rounding X as ggml rounds activations for W's type.
void project(mome_session& s, const Matrix& W, const std::vector<float>& X, int64_t n, std::vector<float>& rounded,
             std::vector<float>& Y) {
    const float* input = X.data();
    if (W.type != MOME_TENSOR_TYPE_F32) {
        rounded.assign(X.begin(), X.begin() + n * W.cols);
        round_activations_like_weights(W.type, rounded.data(), n * W.cols);
        input = rounded.data();
    }
    Y.resize(static_cast<size_t>(n * W.rows));
    if (s.use_reference) matmul_ref(W, input, n, Y.data());
    else matmul_fast(W, input, n, Y.data(), *s.pool);
}

void for_each_token(mome_session& s, int64_t n, const std::function<void(int64_t)>& body) {
    if (s.use_reference) {
        for (int64_t t = 0; t < n; ++t) body(t);
    } else {
        s.pool->run(n, body);
    }
}

}  // namespace

void run_batch(mome_session& s, const mome_batch& b, float* logits, int64_t n, int64_t n_out);

// The parts every session shares, after checking the parameters that size them.
std::unique_ptr<mome_session> session_shell(const mome_llama_config& c, const mome_session_params& params) {
    const int64_t n_ctx = params.n_ctx == 0 ? c.n_ctx_train : params.n_ctx;
    if (n_ctx < 1 || n_ctx > (int64_t(1) << 24))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("n_ctx = %lld is outside 1..%lld", static_cast<long long>(n_ctx), 1ll << 24));
    if (params.n_seq_max < 1 || params.n_seq_max > 4096)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("n_seq_max = %d is outside 1..4096", params.n_seq_max));
    if (params.n_threads < 0 || params.n_threads > 1024)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("n_threads = %d is outside 0..1024", params.n_threads));
    const int32_t backend = abi_enum(params.backend);
    if (backend != MOME_BACKEND_CPU && backend != MOME_BACKEND_CUDA)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("unknown backend %d", backend));
    if (params.backend == MOME_BACKEND_CUDA && (params.device_index < 0 || params.device_index > 1023))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("device_index = %d is not a CUDA device index", params.device_index));
    auto s = std::make_unique<mome_session>();
    s->config = c;
    s->n_ctx = static_cast<int32_t>(n_ctx);
    s->n_seq = params.n_seq_max;
    s->use_reference = params.use_reference != 0;
    const int threads = params.n_threads > 0 ? params.n_threads : std::max(1u, std::thread::hardware_concurrency());
    s->pool = std::make_unique<ThreadPool>(threads);
    s->n_threads = threads;
    s->seq_length.assign(static_cast<size_t>(s->n_seq), 0);
    return s;
}

std::unique_ptr<mome_session> create_session(const mome_model& model, const mome_session_params& params) {
    if (!model.is_llama)
        fail(MOME_STATUS_UNSUPPORTED, format("%s: not a Llama model", model.file->path().c_str()));
    const mome_llama_config& c = model.config;
    auto s = session_shell(c, params);
    const int64_t n_ctx = s->n_ctx;
    const bool on_cuda = params.backend == MOME_BACKEND_CUDA;
    // A metadata-only open skipped the tensor checks; the forward pass needs them.
    check_llama_tensors(*model.file, c);
    const Dims d = dims_of(c);
    const uint64_t per_layer = static_cast<uint64_t>(params.n_seq_max) * static_cast<uint64_t>(n_ctx) *
                               static_cast<uint64_t>(d.kv_dim + d.v_dim);
    const uint64_t bytes = per_layer * static_cast<uint64_t>(c.n_layer) * sizeof(float);
    if (bytes > kMaxCacheBytes && !on_cuda)
        fail(MOME_STATUS_OUT_OF_MEMORY, format("a KV cache of %d sequences x %lld positions needs %.1f GiB (limit %.0f GiB)",
                                               params.n_seq_max, static_cast<long long>(n_ctx), bytes / 1073741824.0,
                                               kMaxCacheBytes / 1073741824.0));

    if (on_cuda)
        for (const GgufTensor& t : model.file->tensors())
            if (is_quantized_type(t.type))
                fail(MOME_STATUS_UNSUPPORTED, format("%s: tensor '%s' is %s; the CUDA backend computes with F32, F16 and BF16 "
                                                     "weights only (run quantized models on the CPU backend)",
                                                     model.file->path().c_str(), t.name.c_str(), tensor_type_name(t.type).c_str()));
    s->model = &model;
    s->weights = load_llama_weights(*model.file, c);
    if (params.bank) {
        if (params.bank->model != &model)
            fail(MOME_STATUS_INVALID_ARGUMENT, "the memory bank belongs to another model handle than the session's");
        s->bank = params.bank;
        s->routes.assign(static_cast<size_t>(params.n_seq_max),
                         std::vector<mome_session::Route>(static_cast<size_t>(params.bank->params.n_layers)));
    }
    if (on_cuda) {
        s->cuda.reset(cuda_session_create(*s, params.device_index));
        return s;
    }
    s->k_cache.resize(static_cast<size_t>(c.n_layer));
    s->v_cache.resize(static_cast<size_t>(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
        s->k_cache[static_cast<size_t>(l)].assign(static_cast<size_t>(s->n_seq * n_ctx * d.kv_dim), 0.0f);
        s->v_cache[static_cast<size_t>(l)].assign(static_cast<size_t>(s->n_seq * n_ctx * d.v_dim), 0.0f);
    }
    return s;
}

std::unique_ptr<mome_session> create_synthetic_session(const mome_synthetic_params& model, const mome_session_params& params) {
    if (abi_enum(params.backend) != MOME_BACKEND_CUDA)
        fail(MOME_STATUS_UNSUPPORTED, "a synthetic model generated on the device needs the CUDA backend (params.backend)");
    if (params.bank) fail(MOME_STATUS_UNSUPPORTED, "a synthetic device session runs no memory bank");
    const mome_llama_config c = synthetic_config(model);
    auto s = session_shell(c, params);
    const std::vector<float> factors = c.has_rope_freqs ? llama3_rope_factors(model, c.n_rot) : std::vector<float>{};
    s->cuda.reset(cuda_session_create_synthetic(*s, params.device_index, model, factors));
    return s;
}

void decode(mome_session& s, const mome_batch& b, float* logits, uint64_t logits_capacity) {
    const mome_llama_config& c = s.config;
    const Dims d = dims_of(c);
    if (b.n_tokens < 1) fail(MOME_STATUS_INVALID_ARGUMENT, "the batch is empty (n_tokens < 1)");
    require_arg(b.tokens && b.positions && b.seq_ids, "batch tokens, positions or seq_ids is null");
    const int64_t n = b.n_tokens;

    // Validate everything before touching the cache.
    std::vector<int32_t> next(s.seq_length);
    int64_t n_out = 0;
    for (int64_t t = 0; t < n; ++t) {
        const int32_t tok = b.tokens[t], seq = b.seq_ids[t], pos = b.positions[t];
        if (tok < 0 || tok >= c.n_vocab)
            fail(MOME_STATUS_OUT_OF_RANGE, format("token %d (batch index %lld) is outside the vocabulary 0..%lld", tok,
                                                  static_cast<long long>(t), static_cast<long long>(c.n_vocab - 1)));
        if (seq < 0 || seq >= s.n_seq)
            fail(MOME_STATUS_OUT_OF_RANGE, format("sequence id %d (batch index %lld) is outside 0..%d", seq,
                                                  static_cast<long long>(t), s.n_seq - 1));
        if (pos != next[static_cast<size_t>(seq)])
            fail(MOME_STATUS_INVALID_ARGUMENT, format("position %d of sequence %d (batch index %lld) is out of order: "
                                                      "the sequence continues at position %d", pos, seq,
                                                      static_cast<long long>(t), next[static_cast<size_t>(seq)]));
        if (pos >= s.n_ctx)
            fail(MOME_STATUS_OUT_OF_RANGE, format("context overflow: sequence %d would need position %d, the session holds %d",
                                                  seq, pos, s.n_ctx));
        ++next[static_cast<size_t>(seq)];
        const bool want = b.want_logits ? b.want_logits[t] != 0 : t == n - 1;
        n_out += want;
    }
    if (n_out > 0) {
        require_arg(logits != nullptr, "logits is null but the batch asks for logits");
        if (static_cast<uint64_t>(n_out) * static_cast<uint64_t>(d.n_vocab) > logits_capacity)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("the batch asks for %lld rows of %lld logits; the buffer holds %llu floats",
                                                      static_cast<long long>(n_out), static_cast<long long>(d.n_vocab),
                                                      static_cast<unsigned long long>(logits_capacity)));
    }

    // Routes computed by this batch are kept only if the whole batch succeeds.
    const auto routes_before = s.routes;
    try {
        if (s.cuda) cuda_session_run(s, b, logits, n, n_out);
        else run_batch(s, b, logits, n, n_out);
    } catch (...) {
        s.routes = routes_before;
        throw;
    }
    s.seq_length = next;
}

void run_batch(mome_session& s, const mome_batch& b, float* logits, int64_t n, int64_t n_out) {
    const mome_llama_config& c = s.config;
    const Dims d = dims_of(c);
    const int64_t D = d.d;
    std::vector<float> x(static_cast<size_t>(n * D)), cur(static_cast<size_t>(n * D)), rounded;
    std::vector<float> q, k, v, attn(static_cast<size_t>(n * d.attn_out)), o, gate, up, h;
    std::vector<float> memory(s.bank ? static_cast<size_t>(n * D) : 0);
    for (int64_t t = 0; t < n; ++t) embed_ref(s.weights.token_embd, b.tokens[t], x.data() + t * D);

    RopeParams rope;
    rope.n_rot = c.n_rot;
    rope.freq_base = c.rope_freq_base;
    rope.freq_scale = c.rope_freq_scale;
    rope.freq_factors = s.weights.rope_freqs.empty() ? nullptr : s.weights.rope_freqs.data();

    for (int64_t l = 0; l < c.n_layer; ++l) {
        const LayerWeights& L = s.weights.layers[static_cast<size_t>(l)];
        for (int64_t t = 0; t < n; ++t)
            rms_norm_ref(x.data() + t * D, L.attn_norm.data(), D, c.rms_norm_eps, cur.data() + t * D);
        project(s, L.wq, cur, n, rounded, q);
        project(s, L.wk, cur, n, rounded, k);
        project(s, L.wv, cur, n, rounded, v);

        float* k_cache = s.k_cache[static_cast<size_t>(l)].data();
        float* v_cache = s.v_cache[static_cast<size_t>(l)].data();
        for (int64_t t = 0; t < n; ++t) {
            rope_norm_ref(q.data() + t * d.q_dim, c.n_head, c.head_dim, b.positions[t], rope);
            rope_norm_ref(k.data() + t * d.kv_dim, c.n_head_kv, c.head_dim, b.positions[t], rope);
            const int64_t slot = static_cast<int64_t>(b.seq_ids[t]) * s.n_ctx + b.positions[t];
            std::copy_n(k.data() + t * d.kv_dim, d.kv_dim, k_cache + slot * d.kv_dim);
            std::copy_n(v.data() + t * d.v_dim, d.v_dim, v_cache + slot * d.v_dim);
        }
        for_each_token(s, n, [&](int64_t t) {
            const int64_t base = static_cast<int64_t>(b.seq_ids[t]) * s.n_ctx;
            attention_ref(q.data() + t * d.q_dim, k_cache + base * d.kv_dim, v_cache + base * d.v_dim, b.positions[t] + 1,
                          c.n_head, c.n_head_kv, c.head_dim, attn.data() + t * d.attn_out);
        });
        project(s, L.wo, attn, n, rounded, o);
        for (int64_t i = 0; i < n * D; ++i) x[static_cast<size_t>(i)] += o[static_cast<size_t>(i)];

        for (int64_t t = 0; t < n; ++t)
            rms_norm_ref(x.data() + t * D, L.ffn_norm.data(), D, c.rms_norm_eps, cur.data() + t * D);
        // The memory layer reads the same input as the MLP and adds beside it.
        const int slot = s.bank ? s.bank->slot_of_block(l) : -1;
        if (slot >= 0) memory_layer_delta(s, slot, b, cur.data(), n, memory.data());
        project(s, L.gate, cur, n, rounded, gate);
        project(s, L.up, cur, n, rounded, up);
        h.resize(static_cast<size_t>(n * d.n_ff));
        swiglu_ref(gate.data(), up.data(), n * d.n_ff, h.data());
        project(s, L.down, h, n, rounded, o);
        for (int64_t i = 0; i < n * D; ++i) x[static_cast<size_t>(i)] += o[static_cast<size_t>(i)];
        if (slot >= 0)
            for (int64_t i = 0; i < n * D; ++i) x[static_cast<size_t>(i)] += memory[static_cast<size_t>(i)];
    }

    if (n_out > 0) {
        std::vector<float> normed(static_cast<size_t>(n_out * D)), out;
        int64_t row = 0;
        for (int64_t t = 0; t < n; ++t) {
            const bool want = b.want_logits ? b.want_logits[t] != 0 : t == n - 1;
            if (want) rms_norm_ref(x.data() + t * D, s.weights.output_norm.data(), D, c.rms_norm_eps, normed.data() + row++ * D);
        }
        project(s, s.weights.output, normed, n_out, rounded, out);
        std::copy(out.begin(), out.end(), logits);
    }
}

}  // namespace mome
