#include "finetune/finetuner.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/abi_enum.h"
#include "core/abort.h"
#include "core/backend_kind.h"
#include "core/error.h"
#include "cpu/shared_pools.h"
#include "memory/fact_layout.h"
#include "model/model.h"

namespace mome {

mome_finetuner_params default_finetuner_params() {
    mome_finetuner_params p{};
    p.struct_size = sizeof p;
    p.mode = MOME_FINETUNE_MODE_LORA;
    p.rank = 8;
    p.alpha = 16.0f;
    p.learning_rate = 1e-3f;
    p.beta1 = 0.9f, p.beta2 = 0.999f, p.epsilon = 1e-8f, p.weight_decay = 0.0f;
    p.batch_size = 16;
    p.n_threads = 0;
    p.backend = MOME_BACKEND_CPU;
    p.device = 0;
    p.seed = 1;
    return p;
}

TrainedTensor::TrainedTensor(Backend& backend, const OptimizerParams& o, int64_t r, int64_t c)
    : value(floats(backend, r * c)), grad(floats(backend, r * c, true)), rows(r), cols(c), optimizer(o, r, c) {}

Tensor TrainedTensor::view() const {
    return Tensor{value.as<uint8_t>(), MOME_TENSOR_TYPE_F32, rows, cols, Device::Host};
}

namespace {

void check_params(const mome_finetuner_params& p) {
    const int32_t mode = abi_enum(p.mode);
    if (mode != MOME_FINETUNE_MODE_LORA && mode != MOME_FINETUNE_MODE_FULL)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("mode = %d is no mome_finetune_mode (LORA 0, FULL 1)", mode));
    if (mode == MOME_FINETUNE_MODE_LORA && (p.rank < 1 || p.rank > 4096))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("rank = %d: a LoRA adapter's rank must be in 1..4096", p.rank));
    const auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
    if (!in(p.learning_rate, 0, 1e3)) fail(MOME_STATUS_INVALID_ARGUMENT, format("learning_rate = %g must be in 0..1000", p.learning_rate));
    if (!in(p.alpha, 1e-6, 1e6)) fail(MOME_STATUS_INVALID_ARGUMENT, format("alpha = %g must be in (0, 1e6]", p.alpha));
    if (!in(p.beta1, 0, 0.999999) || !in(p.beta2, 0, 0.999999))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("beta1 = %g, beta2 = %g: each must be in [0, 1)", p.beta1, p.beta2));
    if (!in(p.epsilon, 1e-30, 1) || !in(p.weight_decay, 0, 1))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("epsilon = %g (0..1], weight_decay = %g [0, 1]: out of range", p.epsilon, p.weight_decay));
    if (p.batch_size < 1 || p.batch_size > 4096) fail(MOME_STATUS_INVALID_ARGUMENT, format("batch_size = %d is outside 1..4096", p.batch_size));
    if (p.n_threads < 0 || p.n_threads > 1024) fail(MOME_STATUS_INVALID_ARGUMENT, format("n_threads = %d is outside 0..1024", p.n_threads));
    check_backend(p.backend, p.device);
}

const mome_finetuner_params& checked(const mome_finetuner_params& p) {
    check_params(p);
    return p;
}

std::unique_ptr<Backend> make_backend(const mome_finetuner_params& p, int n_threads) {
    const int32_t kind = abi_enum(p.backend);
    if (kind == MOME_BACKEND_CUDA) return make_cuda_backend(p.device);
    if (kind == MOME_BACKEND_CPU_REFERENCE) return make_cpu_ref_backend();
    return make_cpu_fast_backend(shared_pool(n_threads));
}

// One fact's rows of the packed batch, and the batch itself: tokens [starts[f], starts[f+1])
// at positions 0.. of sequence f.
struct Packed {
    std::vector<int32_t> tokens, positions, seq_ids;
    std::vector<int64_t> starts{0};
    std::vector<AnswerSpan> spans;
    std::vector<int32_t> targets;
    int64_t longest = 0;
};

Packed pack(const mome_finetuner& t, int32_t first, int32_t count) {
    Packed p;
    for (int32_t i = 0; i < count; ++i) {
        const int32_t f = first + i;
        const int64_t begin = t.starts[static_cast<size_t>(f)], n = t.starts[static_cast<size_t>(f) + 1] - begin;
        const int64_t answer = t.answer_starts[static_cast<size_t>(f)];
        for (int64_t k = 0; k < n; ++k) {
            p.tokens.push_back(t.tokens[static_cast<size_t>(begin + k)]);
            p.positions.push_back(static_cast<int32_t>(k));
            p.seq_ids.push_back(i);
        }
        p.spans.push_back(AnswerSpan{p.starts.back() + answer - 1, n - answer});
        p.targets.insert(p.targets.end(), t.tokens.begin() + begin + answer, t.tokens.begin() + begin + n);
        p.starts.push_back(p.starts.back() + n);
        p.longest = std::max(p.longest, n);
    }
    return p;
}

// The batch's forward (keeping activations when `keep` is given) and its answers' losses;
// `training` receives the loss head's gradients, `dx` the residual stream's.
std::vector<LossResult> forward_loss(mome_finetuner& t, const Packed& p, const GraphInputs& inputs, KvCache& cache,
                                     std::vector<LayerActivations>* keep, const GraphTraining& training, bool skip_exact, float* dx) {
    Backend& be = *t.backend;
    const mome_llama_config& c = t.model->config;
    const int64_t n = static_cast<int64_t>(p.tokens.size());
    Buffer x = floats(be, n * c.n_embd);
    llama_embed(be, t.weights, inputs.batch(), x.as());
    llama_forward(be, c, t.weights, inputs.batch(), cache, 0, c.n_layer, x.as(), nullptr, keep, &t.apply);
    return llama_loss(be, c, t.weights, x.as(), n, p.spans, p.targets, skip_exact, dx, &training);
}

// A trained F32 copy of a weight (quantized and half weights dequantized row by row).
TrainedTensor& copy_of(mome_finetuner& t, const OptimizerParams& o, const Tensor& w) {
    t.trained.push_back(std::make_unique<TrainedTensor>(*t.backend, o, w.rows, w.cols));
    TrainedTensor& copy = *t.trained.back();
    std::vector<float> host(static_cast<size_t>(w.elements()));
    for (int64_t r = 0; r < w.rows; ++r) embed_ref(w, static_cast<int32_t>(r), host.data() + r * w.cols);
    t.backend->upload(copy.value.as<void>(), host.data(), host.size() * sizeof(float));
    return copy;
}

void setup_full(mome_finetuner& t, const OptimizerParams& o) {
    const LlamaWeights& h = t.host_weights;
    LlamaWeights& w = t.weights;
    const auto train = [&](const Tensor& host, Tensor& device, float** grad) {
        TrainedTensor& copy = copy_of(t, o, host);
        device = copy.view();
        device.device = t.backend->device();
        *grad = copy.grad.as();
    };
    float* d_embd = nullptr;
    train(h.token_embd, w.token_embd, &d_embd);
    t.d_token_embd = d_embd;
    if (h.output.data == h.token_embd.data) {  // tied: one table, both gradients into it
        w.output = w.token_embd;
        t.train.d_output = d_embd;
    } else {
        train(h.output, w.output, &t.train.d_output);
    }
    train(h.output_norm, w.output_norm, &t.train.d_output_norm);
    if (h.rope_freqs.data) w.rope_freqs = t.backend->to_device(h.rope_freqs);
    w.layers.resize(h.layers.size());
    for (size_t l = 0; l < h.layers.size(); ++l) {
        const LayerWeights& H = h.layers[l];
        LayerWeights& L = w.layers[l];
        LayerTraining& g = t.train.layers[l];
        train(H.attn_norm, L.attn_norm, &g.d_attn_norm);
        train(H.ffn_norm, L.ffn_norm, &g.d_ffn_norm);
        train(H.wq, L.wq, &g.proj[kProjWq].dw);
        train(H.wk, L.wk, &g.proj[kProjWk].dw);
        train(H.wv, L.wv, &g.proj[kProjWv].dw);
        train(H.wo, L.wo, &g.proj[kProjWo].dw);
        train(H.gate, L.gate, &g.proj[kProjGate].dw);
        train(H.up, L.up, &g.proj[kProjUp].dw);
        train(H.down, L.down, &g.proj[kProjDown].dw);
    }
}

void setup_lora(mome_finetuner& t, const OptimizerParams& o) {
    t.weights = weights_on(*t.backend, t.host_weights);
    std::mt19937_64 rng(t.params.seed);
    const int64_t r = t.params.rank;
    const float scale = t.params.alpha / static_cast<float>(r);
    const auto adapter = [&](const Tensor& w, ProjectionTraining& apply, ProjectionTraining& train) {
        t.trained.push_back(std::make_unique<TrainedTensor>(*t.backend, o, r, w.cols));
        TrainedTensor& a = *t.trained.back();
        t.trained.push_back(std::make_unique<TrainedTensor>(*t.backend, o, w.rows, r));
        TrainedTensor& b = *t.trained.back();
        std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(w.cols)));
        std::vector<float> values(static_cast<size_t>(a.count()));
        for (float& v : values) v = normal(rng);
        t.backend->upload(a.value.as<void>(), values.data(), values.size() * sizeof(float));
        t.backend->zero(b.value.as<void>(), static_cast<uint64_t>(b.count()) * sizeof(float));
        apply.a = a.view(), apply.b = b.view();
        apply.a.device = apply.b.device = t.backend->device();
        apply.scale = scale;
        train = apply;
        train.da = a.grad.as(), train.db = b.grad.as();
    };
    for (size_t l = 0; l < t.weights.layers.size(); ++l) {
        const LayerWeights& L = t.weights.layers[l];
        const Tensor* projections[kProjections] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down};
        for (int p = 0; p < kProjections; ++p) adapter(*projections[p], t.apply.layers[l].proj[p], t.train.layers[l].proj[p]);
    }
}

void zero_gradients(mome_finetuner& t) {
    for (const auto& p : t.trained) t.backend->zero(p->grad.as<void>(), static_cast<uint64_t>(p->count()) * sizeof(float));
}

// An AdamW step of every trained tensor from its gradient, which is then zeroed (on a GPU the
// values and gradients travel to the host and back).
void update_all(mome_finetuner& t) {
    Backend& be = *t.backend;
    const bool host = be.device() == Device::Host;
    for (const auto& p : t.trained) {
        const uint64_t bytes = static_cast<uint64_t>(p->count()) * sizeof(float);
        std::vector<float> value, grad;
        float* v = p->value.as();
        const float* g = p->grad.as();
        if (!host) {
            value = download(be, p->value.as(), p->count()), grad = download(be, p->grad.as(), p->count());
            v = value.data(), g = grad.data();
        }
        p->optimizer.update(0, v, g, t.params.learning_rate);
        if (!host) be.upload(p->value.as<void>(), v, bytes);
        be.zero(p->grad.as<void>(), bytes);
    }
}

void require_finite_gradients(mome_finetuner& t) {
    for (const auto& p : t.trained) {
        const std::vector<float> g = download(*t.backend, p->grad.as(), p->count());
        for (float v : g)
            if (!std::isfinite(v)) {
                zero_gradients(t);
                fail(MOME_STATUS_INTERNAL_ERROR, "a gradient has a non-finite value: no update was made");
            }
    }
}

}  // namespace

}  // namespace mome

using namespace mome;

mome_finetuner::mome_finetuner(const mome_model& m, const mome_finetuner_params& p) : model(&m), params(checked(p)) {
    if (!m.is_llama) fail(MOME_STATUS_UNSUPPORTED, "fine-tuning needs a Llama-family model");
    n_threads = threads_or_all(p.n_threads);
    const mome_llama_config& c = m.config;
    host_weights = load_llama_weights(*m.file, c);
    backend = make_backend(p, n_threads);
    apply.layers.resize(static_cast<size_t>(c.n_layer));
    train.layers.resize(static_cast<size_t>(c.n_layer));
    const OptimizerParams o{MOME_OPTIMIZER_ADAMW, p.beta1, p.beta2, p.epsilon, p.weight_decay};
    if (abi_enum(p.mode) == MOME_FINETUNE_MODE_FULL) setup_full(*this, o);
    else setup_lora(*this, o);
}

namespace mome {

void finetuner_add_facts(mome_finetuner& t, const int32_t* tokens, const int32_t* lengths, const int32_t* answer_starts, int32_t n) {
    require_arg(t.updates == 0 && t.position == 0, "facts are added before the first step");
    require_arg(n >= 0 && (n == 0 || (tokens && lengths && answer_starts)), "tokens, fact_lengths and answer_starts are required");
    if (static_cast<int64_t>(t.n_facts()) + n > (int64_t(1) << 30)) fail(MOME_STATUS_OUT_OF_RANGE, "more than 2^30 facts");
    const int64_t at = check_fact_layout(t.model->config, tokens, lengths, answer_starts, n);
    t.tokens.insert(t.tokens.end(), tokens, tokens + at);
    for (int32_t f = 0; f < n; ++f) {
        t.starts.push_back(t.starts.back() + lengths[f]);
        t.answer_starts.push_back(answer_starts[f]);
    }
}

std::vector<LossResult> finetuner_gradients(mome_finetuner& t, int32_t first, int32_t count, bool skip_exact) {
    require_arg(first >= 0 && count >= 1 && first + count <= t.n_facts(), "the facts of a step are among the fine-tuner's");
    const mome_llama_config& c = t.model->config;
    Backend& be = *t.backend;
    const Packed p = pack(t, first, count);
    const int64_t n = static_cast<int64_t>(p.tokens.size());
    const GraphInputs inputs(be, p.tokens.data(), p.positions.data(), p.seq_ids.data(), n);
    KvCache cache = make_kv_cache(be, c, count, p.longest);
    std::vector<LayerActivations> acts(static_cast<size_t>(c.n_layer));
    Buffer dx = floats(be, n * c.n_embd);
    zero_gradients(t);
    try {
        std::vector<LossResult> losses = forward_loss(t, p, inputs, cache, &acts, t.train, skip_exact, dx.as());
        const bool learning = std::any_of(losses.begin(), losses.end(), [&](const LossResult& l) { return !(skip_exact && l.exact()); });
        if (learning) {
            llama_backward_from(be, c, t.weights, inputs.batch(), p.starts, cache, acts, 0, c.n_layer, dx.as(), nullptr, &t.train);
            if (t.d_token_embd) be.embed_backward(dx.as(), inputs.batch().tokens, n, c.n_embd, t.d_token_embd);
        }
        return losses;
    } catch (...) {
        zero_gradients(t);
        throw;
    }
}

mome_finetuner_step_result finetuner_step(mome_finetuner& t) {
    require_arg(t.n_facts() > 0, "the fine-tuner has no facts: add them first");
    const int32_t first = t.position, count = std::min(t.params.batch_size, t.n_facts() - first);
    mome_finetuner_step_result r{};
    r.struct_size = sizeof r;
    r.first_fact = first, r.n_facts = count;
    for (const LossResult& l : finetuner_gradients(t, first, count, true)) {
        r.loss_sum += l.loss;
        r.n_exact += l.exact();
    }
    if (r.n_exact < count) {
        require_finite_gradients(t);  // fails before anything changes
        update_all(t);
        ++t.updates;
        r.updated = 1;
    }
    t.position += count;
    if (t.position == t.n_facts()) t.position = 0, r.epoch_done = 1;
    return r;
}

int32_t finetuner_evaluate(mome_finetuner& t, uint8_t* exact) {
    const mome_llama_config& c = t.model->config;
    int32_t n_exact = 0;
    for (int32_t first = 0; first < t.n_facts(); first += t.params.batch_size) {
        const int32_t count = std::min(t.params.batch_size, t.n_facts() - first);
        const Packed p = pack(t, first, count);
        const int64_t n = static_cast<int64_t>(p.tokens.size());
        const GraphInputs inputs(*t.backend, p.tokens.data(), p.positions.data(), p.seq_ids.data(), n);
        KvCache cache = make_kv_cache(*t.backend, c, count, p.longest);
        Buffer dx = floats(*t.backend, n * c.n_embd);
        const std::vector<LossResult> losses = forward_loss(t, p, inputs, cache, nullptr, t.apply, false, dx.as());
        for (int32_t i = 0; i < count; ++i) {
            const bool ok = losses[static_cast<size_t>(i)].exact();
            n_exact += ok;
            if (exact) exact[first + i] = ok;
        }
    }
    return n_exact;
}

mome_finetuner_info finetuner_info(const mome_finetuner& t) {
    mome_finetuner_info info{};
    info.n_facts = t.n_facts();
    info.position = t.position;
    info.updates = t.updates;
    for (const auto& p : t.trained) {
        info.trained_params += p->count();
        // AdamW's moments and step count, once the tensor has been updated.
        if (!p->optimizer.states().empty())
            info.optimizer_state_bytes += p->optimizer.state_floats() * static_cast<int64_t>(sizeof(float)) + static_cast<int64_t>(sizeof(int64_t));
    }
    return info;
}

void finetuner_logits(mome_finetuner& t, const int32_t* tokens, int64_t n, float* logits) {
    const mome_llama_config& c = t.model->config;
    require_arg(tokens != nullptr && logits != nullptr, "tokens or logits is null");
    if (n < 1 || n > c.n_ctx_train)
        fail(MOME_STATUS_OUT_OF_RANGE, format("%lld tokens: a sequence needs 1..%lld (the model's context)", static_cast<long long>(n),
                                              static_cast<long long>(c.n_ctx_train)));
    for (int64_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= c.n_vocab)
            fail(MOME_STATUS_OUT_OF_RANGE, format("token %d at %lld is outside the vocabulary", tokens[i], static_cast<long long>(i)));
    Backend& be = *t.backend;
    std::vector<int32_t> positions(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) positions[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    const GraphInputs inputs(be, tokens, positions.data(), nullptr, n);
    KvCache cache = make_kv_cache(be, c, 1, n);
    Buffer x = floats(be, n * c.n_embd), out = floats(be, n * c.n_vocab);
    llama_embed(be, t.weights, inputs.batch(), x.as());
    llama_forward(be, c, t.weights, inputs.batch(), cache, 0, c.n_layer, x.as(), nullptr, nullptr, &t.apply);
    const Buffer rows = upload(be, positions);
    llama_logits(be, c, t.weights, x.as(), rows.as<int32_t>(), n, out.as());
    be.download(logits, out.as(), static_cast<uint64_t>(n * c.n_vocab) * sizeof(float));
}

}  // namespace mome
