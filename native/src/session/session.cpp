#include "session/session.h"

#include <algorithm>
#include <thread>

#include "core/abi_enum.h"
#include "core/backend_kind.h"
#include "core/error.h"
#include "gguf/tensor_types.h"
#include "memory/memory_layer.h"
#include "model/llama_config.h"
#include "model/synthetic.h"
#include "quant/quant.h"

namespace mome {

namespace {

// Refuse caches beyond this many bytes instead of letting an absurd n_ctx exhaust memory.
constexpr uint64_t kMaxCacheBytes = uint64_t(64) << 30;

// The cache a session gets when its params leave n_ctx at 0: the model's training context, at
// most this many positions (llama.cpp's tools default to 4096 too). A file's context_length is
// only a claim, so a hostile or merely huge one never sizes the cache; longer contexts are asked
// for explicitly.
constexpr int64_t kDefaultMaxContext = 4096;
constexpr int64_t kMaxContext = int64_t(1) << 24;

}  // namespace

void run_batch(mome_session& s, const mome_batch& b, float* logits, int64_t n_out);

// The parts every session shares, after checking the parameters that size them.
std::unique_ptr<mome_session> session_shell(const mome_llama_config& c, const mome_session_params& params) {
    const int64_t n_ctx = params.n_ctx == 0 ? std::min(c.n_ctx_train, kDefaultMaxContext) : params.n_ctx;
    if (n_ctx < 1 || n_ctx > kMaxContext)
        fail(MOME_STATUS_INVALID_ARGUMENT,
             format("n_ctx = %lld is outside 1..%lld", static_cast<long long>(n_ctx), static_cast<long long>(kMaxContext)));
    if (params.n_seq_max < 1 || params.n_seq_max > 4096)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("n_seq_max = %d is outside 1..4096", params.n_seq_max));
    if (params.n_threads < 0 || params.n_threads > 1024)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("n_threads = %d is outside 0..1024", params.n_threads));
    check_backend(params.backend, params.device);
    const int32_t backend = abi_enum(params.backend);
    auto s = std::make_unique<mome_session>();
    s->config = c;
    s->n_ctx = static_cast<int32_t>(n_ctx);
    s->n_seq = params.n_seq_max;
    const int threads = params.n_threads > 0 ? params.n_threads : std::max(1u, std::thread::hardware_concurrency());
    s->pool = std::make_unique<ThreadPool>(threads);
    s->n_threads = threads;
    s->use_reference = backend == MOME_BACKEND_CPU_REFERENCE;
    if (backend == MOME_BACKEND_CUDA) s->backend = make_cuda_backend(params.device);
    else if (s->use_reference) s->backend = make_cpu_ref_backend();
    else s->backend = make_cpu_fast_backend(*s->pool);
    s->seq_length.assign(static_cast<size_t>(s->n_seq), 0);
    return s;
}

std::unique_ptr<mome_session> create_session(const mome_model& model, const mome_session_params& params) {
    if (!model.is_llama)
        fail(MOME_STATUS_UNSUPPORTED, format("%s: not a Llama model", model.file->path().c_str()));
    const mome_llama_config& c = model.config;
    if (abi_enum(params.backend) == MOME_BACKEND_CUDA)
        for (const GgufTensor& t : model.file->tensors())
            if (!backend_kind_supports_type(MOME_BACKEND_CUDA, static_cast<mome_tensor_type>(t.type)))
                fail(MOME_STATUS_UNSUPPORTED, format("%s: tensor '%s' is %s; the CUDA backend computes with F32, F16 and BF16 weights "
                                                     "only (run quantized models on the CPU backend)",
                                                     model.file->path().c_str(), t.name.c_str(), tensor_type_name(t.type).c_str()));
    auto s = session_shell(c, params);
    const int64_t n_ctx = s->n_ctx;
    const bool on_cuda = abi_enum(params.backend) == MOME_BACKEND_CUDA;
    // A metadata-only open skipped the tensor checks; the forward pass needs them.
    check_llama_tensors(*model.file, c);
    const uint64_t per_layer = static_cast<uint64_t>(params.n_seq_max) * static_cast<uint64_t>(n_ctx) *
                               static_cast<uint64_t>(c.n_head_kv * (c.head_dim + c.head_dim_v));
    const uint64_t bytes = per_layer * static_cast<uint64_t>(c.n_layer) * sizeof(float);
    if (bytes > kMaxCacheBytes && !on_cuda)
        fail(MOME_STATUS_OUT_OF_MEMORY, format("a KV cache of %d sequences x %lld positions needs %.1f GiB (limit %.0f GiB)",
                                               params.n_seq_max, static_cast<long long>(n_ctx), bytes / 1073741824.0,
                                               kMaxCacheBytes / 1073741824.0));

    s->model = &model;
    s->host_weights = load_llama_weights(*model.file, c);
    s->weights = weights_on(*s->backend, s->host_weights);
    if (params.bank) {
        if (params.bank->model != &model)
            fail(MOME_STATUS_INVALID_ARGUMENT, "the memory bank belongs to another model handle than the session's");
        s->bank = params.bank;
        s->routes.assign(static_cast<size_t>(params.n_seq_max),
                         std::vector<mome_session::Route>(static_cast<size_t>(params.bank->params.n_layers)));
        if (s->backend->device() != Device::Host)
            for (int slot = 0; slot < params.bank->params.n_layers; ++slot) {
                LoraTables t = bank_tables(*params.bank, slot);
                const MemoryLayer& m = params.bank->layers[static_cast<size_t>(slot)];
                const int64_t rows = t.n_experts * t.rank;
                t.a = s->backend->to_device(Tensor{m.a.data, t.type, rows, t.dim}).data;
                t.b = s->backend->to_device(Tensor{m.b.data, t.type, rows, t.dim}).data;
                s->device_tables.push_back(t);
            }
    }
    s->cache = make_kv_cache(*s->backend, c, s->n_seq, n_ctx);
    return s;
}

std::unique_ptr<mome_session> create_synthetic_session(const mome_synthetic_params& model, const mome_session_params& params) {
    if (abi_enum(params.backend) != MOME_BACKEND_CUDA)
        fail(MOME_STATUS_UNSUPPORTED, "a synthetic model generated on the device needs the CUDA backend (params.backend)");
    if (params.bank) fail(MOME_STATUS_UNSUPPORTED, "a synthetic device session runs no memory bank");
    const mome_llama_config c = synthetic_config(model);
    auto s = session_shell(c, params);
    const std::vector<float> factors = c.has_rope_freqs ? llama3_rope_factors(model, c.n_rot) : std::vector<float>{};
    s->weights = cuda_synthetic_weights(*s->backend, model, c, factors);
    s->cache = make_kv_cache(*s->backend, c, s->n_seq, s->n_ctx);
    return s;
}

void decode(mome_session& s, const mome_batch& b, float* logits, uint64_t logits_capacity) {
    const mome_llama_config& c = s.config;
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
        if (static_cast<uint64_t>(n_out) * static_cast<uint64_t>(c.n_vocab) > logits_capacity)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("the batch asks for %lld rows of %lld logits; the buffer holds %llu floats",
                                                      static_cast<long long>(n_out), static_cast<long long>(c.n_vocab),
                                                      static_cast<unsigned long long>(logits_capacity)));
    }

    // Routes computed by this batch are kept only if the whole batch succeeds.
    const auto routes_before = s.routes;
    try {
        run_batch(s, b, logits, n_out);
    } catch (...) {
        s.routes = routes_before;
        throw;
    }
    s.seq_length = next;
}

void run_batch(mome_session& s, const mome_batch& b, float* logits, int64_t n_out) {
    Backend& be = *s.backend;
    const mome_llama_config& c = s.config;
    const int64_t n = b.n_tokens;
    const GraphInputs inputs(be, b.tokens, b.positions, b.seq_ids, n);
    Buffer x = floats(be, n * c.n_embd);
    llama_embed(be, s.weights, inputs.batch(), x.as());
    const std::unique_ptr<MemoryHook> memory = s.bank ? session_memory(s, b) : nullptr;
    llama_forward(be, c, s.weights, inputs.batch(), s.cache, 0, c.n_layer, x.as(), memory.get(), nullptr);
    if (n_out == 0) return;
    std::vector<int32_t> rows;
    for (int64_t t = 0; t < n; ++t)
        if (b.want_logits ? b.want_logits[t] != 0 : t == n - 1) rows.push_back(static_cast<int32_t>(t));
    const Buffer d_rows = upload(be, rows);
    Buffer out = floats(be, n_out * c.n_vocab);
    llama_logits(be, c, s.weights, x.as(), d_rows.as<int32_t>(), n_out, out.as());
    be.download(logits, out.as(), static_cast<uint64_t>(n_out * c.n_vocab) * sizeof(float));
}

}  // namespace mome
