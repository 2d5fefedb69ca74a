#include "memory/tuner.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>
#include <unistd.h>

#include "core/abi_enum.h"
#include "core/backend_kind.h"
#include "core/error.h"
#include "cpu/shared_pools.h"
#include "memory/fact_layout.h"
#include "model/llama_graph.h"

namespace mome {

mome_tuner_params default_tuner_params() {
    mome_tuner_params p{};
    p.struct_size = sizeof p;
    p.optimizer = MOME_OPTIMIZER_ADAMW;
    p.learning_rate = 0.3f;
    p.schedule = MOME_LR_SCHEDULE_CONSTANT;
    p.warmup_steps = 0;
    p.final_lr_ratio = 0.1f;
    p.beta1 = 0.9f, p.beta2 = 0.999f, p.epsilon = 1e-8f, p.weight_decay = 0.0f;
    p.epochs = 40;
    p.router_epochs = 0;
    p.router_learning_rate = 1e-3f;
    p.batch_size = 16;
    p.activation_cache_bytes = int64_t(1) << 30;
    p.n_threads = 0;
    p.backend = MOME_BACKEND_CPU;
    p.device = 0;
    p.max_step_bytes = 0;
    return p;
}

double learning_rate_at(const mome_tuner_params& p, double base_rate, int64_t updates, double progress) {
    const double warm = p.warmup_steps > 0 ? std::min(1.0, (static_cast<double>(updates) + 1.0) / p.warmup_steps) : 1.0;
    const double floor = p.final_lr_ratio, x = std::clamp(progress, 0.0, 1.0);
    double decay = 1.0;
    if (abi_enum(p.schedule) == MOME_LR_SCHEDULE_COSINE) decay = floor + (1 - floor) * 0.5 * (1 + std::cos(M_PI * x));
    else if (abi_enum(p.schedule) == MOME_LR_SCHEDULE_LINEAR) decay = 1 - (1 - floor) * x;
    return base_rate * warm * decay;
}

namespace {

void check_params(const mome_tuner_params& p) {
    const int32_t optimizer = abi_enum(p.optimizer), schedule = abi_enum(p.schedule);
    if (optimizer != MOME_OPTIMIZER_ADAMW && optimizer != MOME_OPTIMIZER_ADAFACTOR)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("optimizer = %d is no mome_optimizer", optimizer));
    if (schedule < MOME_LR_SCHEDULE_CONSTANT || schedule > MOME_LR_SCHEDULE_LINEAR)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("schedule = %d is no mome_lr_schedule", schedule));
    const auto in = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
    if (!in(p.learning_rate, 0, 1e3) || !in(p.router_learning_rate, 0, 1e3))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("learning rates %g and %g: each must be in 0..1000", p.learning_rate, p.router_learning_rate));
    if (!in(p.beta1, 0, 0.999999) || !in(p.beta2, 0, 0.999999))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("beta1 = %g, beta2 = %g: each must be in [0, 1)", p.beta1, p.beta2));
    if (!in(p.epsilon, 1e-30, 1) || !in(p.weight_decay, 0, 1) || !in(p.final_lr_ratio, 0, 1))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("epsilon = %g (0..1], weight_decay = %g [0, 1], final_lr_ratio = %g [0, 1]: out of range",
                                                  p.epsilon, p.weight_decay, p.final_lr_ratio));
    if (p.epochs < 1 || p.epochs > 1000000 || p.router_epochs < 0 || p.router_epochs > p.epochs)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("epochs = %d must be in 1..1000000 and router_epochs = %d in 0..epochs", p.epochs,
                                                  p.router_epochs));
    if (p.batch_size < 1 || p.batch_size > 4096)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("batch_size = %d is outside 1..4096", p.batch_size));
    if (p.max_step_bytes < 0) fail(MOME_STATUS_INVALID_ARGUMENT, "max_step_bytes may not be negative");
    if (p.warmup_steps < 0 || p.activation_cache_bytes < 0 || p.n_threads < 0 || p.n_threads > 1024)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("warmup_steps = %d, activation_cache_bytes = %lld, n_threads = %d: none may be negative "
                                                  "(threads at most 1024)", p.warmup_steps, static_cast<long long>(p.activation_cache_bytes),
                                                  p.n_threads));
    check_backend(p.backend, p.device);
}

const mome_tuner_params& checked_params(const mome_tuner_params& p) {
    check_params(p);
    return p;
}

OptimizerParams optimizer_params(const mome_tuner_params& p) {
    return OptimizerParams{static_cast<mome_optimizer>(abi_enum(p.optimizer)), p.beta1, p.beta2, p.epsilon, p.weight_decay};
}

int64_t key_row_length(const mome_bank& bank) {
    return bank.params.router == MOME_ROUTER_KIND_PRODUCT ? bank.params.key_dim / 2 : bank.params.key_dim;
}

void require_finite(const std::vector<float>& g, const char* what) {
    for (size_t i = 0; i < g.size(); ++i)
        if (!std::isfinite(g[i]))
            fail(MOME_STATUS_INTERNAL_ERROR, format("the gradient of %s has a non-finite value at %zu: no update was made", what, i));
}

// One optimiser step of the experts a step routed to (the union of the batch's routes).
// The optimiser's key of one expert table: A and B of each expert of each memory layer (a bank
// with one layer keys expert e's A as 2e and its B as 2e + 1).
uint64_t table_key(const mome_bank& bank, int slot, int64_t expert, int table) {
    return 2 * (static_cast<uint64_t>(slot) * static_cast<uint64_t>(bank.params.n_experts) + static_cast<uint64_t>(expert)) +
           static_cast<uint64_t>(table);
}

// Fewer experts than this are stepped on the calling thread: waking the pool costs more
// than it saves (a batch of one fact's 32 experts).
constexpr int64_t kParallelExperts = 64;

// The experts are distinct, so after their states are found (one thread: the map may grow)
// each is stepped on any thread of the pool; the first one alone, as its write may copy a
// table borrowed from a mapped file.
void update_experts(mome_tuner& t, const SlotGradients& g, double lr) {
    MemoryLayer& layer = t.bank->layers[static_cast<size_t>(g.slot)];
    const int64_t n = t.bank->params.rank * t.bank->model->config.n_embd;
    std::vector<RowState*> states(2 * g.experts.size());
    for (size_t j = 0; j < g.experts.size(); ++j) {
        states[2 * j] = &t.experts.state(table_key(*t.bank, g.slot, g.experts[j], 0));
        states[2 * j + 1] = &t.experts.state(table_key(*t.bank, g.slot, g.experts[j], 1));
    }
    const auto step = [&](int64_t j) {
        const int64_t e = g.experts[static_cast<size_t>(j)];
        thread_local std::vector<float> a, b;
        a.resize(static_cast<size_t>(n)), b.resize(static_cast<size_t>(n));
        read_floats(layer.a, e * n, n, a.data());
        read_floats(layer.b, e * n, n, b.data());
        t.experts.update(*states[static_cast<size_t>(2 * j)], a.data(), g.da.data() + j * n, lr);
        t.experts.update(*states[static_cast<size_t>(2 * j + 1)], b.data(), g.db.data() + j * n, lr);
        write_floats(layer.a, e * n, n, a.data());
        write_floats(layer.b, e * n, n, b.data());
    };
    if (g.experts.empty()) return;
    step(0);
    const int64_t rest = static_cast<int64_t>(g.experts.size()) - 1;
    if (rest < kParallelExperts) {
        for (int64_t j = 1; j <= rest; ++j) step(j);
        return;
    }
    shared_pool(t.n_threads).run(rest, [&](int64_t j) { step(j + 1); });
}

// W_q and the key rows of a route, from one fact's router gradients: a flat router's entry j
// is expert j's row; a product router's halves go to its two sub-key rows (shared rows add).
void update_router(mome_tuner& t, const FactGradients& g, double lr) {
    MemoryLayer& layer = t.bank->layers[0];
    const mome_bank_params& p = t.bank->params;
    std::vector<float> wq(g.dwq.size());
    read_floats(layer.wq, 0, static_cast<int64_t>(wq.size()), wq.data());
    t.wq.update(0, wq.data(), g.dwq.data(), lr);
    write_floats(layer.wq, 0, static_cast<int64_t>(wq.size()), wq.data());

    const int64_t row = key_row_length(*t.bank), kd = p.key_dim;
    const int64_t n_sub = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(p.n_experts))));
    std::map<int64_t, std::vector<float>> rows;
    const auto add = [&](int64_t r, const float* grad) {
        std::vector<float>& sum = rows[r];
        sum.resize(static_cast<size_t>(row), 0.0f);
        for (int64_t i = 0; i < row; ++i) sum[static_cast<size_t>(i)] += grad[i];
    };
    for (size_t j = 0; j < g.indices.size(); ++j) {
        const float* grad = g.dkeys.data() + static_cast<int64_t>(j) * kd;
        const int64_t e = g.indices[j];
        if (p.router == MOME_ROUTER_KIND_PRODUCT) {
            add(e / n_sub, grad);
            add(n_sub + e % n_sub, grad + row);
        } else {
            add(e, grad);
        }
    }
    std::vector<float> key(static_cast<size_t>(row));
    for (const auto& [r, grad] : rows) {
        read_floats(layer.keys, r * row, row, key.data());
        t.key_rows.update(static_cast<uint64_t>(r), key.data(), grad.data(), lr);
        write_floats(layer.keys, r * row, row, key.data());
    }
}

// The activations one step keeps (every block above the memory layer), its KV cache and its
// loss head, estimated from the shapes: what a batch needs beyond the model and the bank.
uint64_t step_bytes(const mome_tuner& t, const std::vector<FactInput>& facts) {
    const mome_llama_config& c = t.bank->model->config;
    uint64_t tokens = 0, answers = 0, longest = 0;
    for (const FactInput& f : facts) {
        tokens += static_cast<uint64_t>(f.n);
        answers += static_cast<uint64_t>(f.n - f.answer_start);
        longest = std::max<uint64_t>(longest, static_cast<uint64_t>(f.n));
    }
    const uint64_t q = static_cast<uint64_t>(c.n_head * c.head_dim), kv = static_cast<uint64_t>(c.n_head_kv * c.head_dim);
    const uint64_t D = static_cast<uint64_t>(c.n_embd), ff = static_cast<uint64_t>(c.n_ff);
    const uint64_t per_token_block = 4 * D + 2 * q + 2 * ff;  // x, xn, h, u; q, attn; gate, up
    const uint64_t scratch = 6 * D + 2 * q + 2 * kv + 3 * ff;  // forward and backward scratch
    const uint64_t floats = tokens * (per_token_block * static_cast<uint64_t>(c.n_layer) + scratch) +
                            static_cast<uint64_t>(facts.size()) * longest * 2 * kv * static_cast<uint64_t>(c.n_layer) +
                            answers * (2 * static_cast<uint64_t>(c.n_vocab) + 3 * D);
    return floats * sizeof(float);
}

uint64_t step_limit(const mome_tuner& t) {
    if (t.params.max_step_bytes > 0) return static_cast<uint64_t>(t.params.max_step_bytes);
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 2 : ~uint64_t(0);
}

}  // namespace

}  // namespace mome

using namespace mome;

mome_tuner::mome_tuner(mome_bank& b, const mome_tuner_params& p)
    : bank(&b),
      params(checked_params(p)),  // before the optimisers read its enums
      experts(optimizer_params(p), b.params.rank, b.model->config.n_embd),
      key_rows(optimizer_params(p), 1, key_row_length(b)),
      wq(optimizer_params(p), b.params.key_dim, b.model->config.n_embd) {
    if (p.router_epochs > 0 && b.params.n_layers != 1)
        fail(MOME_STATUS_UNSUPPORTED, format("router epochs train the router of a bank with one memory layer; this one has %d: tune it "
                                             "with router_epochs = 0", b.params.n_layers));
    if (p.router_epochs > 0 && b.params.routing != MOME_ROUTING_MODE_SEQUENCE)
        fail(MOME_STATUS_UNSUPPORTED, "router epochs train banks that route per sequence (question); this one routes per token");
    n_threads = threads_or_all(p.n_threads);
    const mome_llama_config& c = b.model->config;
    host_weights = load_llama_weights(*b.model->file, c);
    const int32_t kind = abi_enum(p.backend);
    if (kind == MOME_BACKEND_CUDA) {
        if (p.router_epochs > 0) fail(MOME_STATUS_UNSUPPORTED, "router epochs run on the CPU only: tune them with the CPU backend");
        backend = make_cuda_backend(p.device);
    } else if (kind == MOME_BACKEND_CPU_REFERENCE) {
        backend = make_cpu_ref_backend();
    } else {
        backend = make_cpu_fast_backend(shared_pool(n_threads));
    }
    weights = weights_on(*backend, host_weights);
}

FactInput mome_tuner::fact(int32_t f) const {
    FactInput in;
    const int64_t first = starts[static_cast<size_t>(f)];
    in.tokens = tokens.data() + first;
    in.n = starts[static_cast<size_t>(f) + 1] - first;
    in.answer_start = answer_starts[static_cast<size_t>(f)];
    const FactRoute& route = routes[static_cast<size_t>(f)];
    if (!route.indices.empty()) in.route_indices = route.indices.data(), in.route_weights = route.weights.data();
    const std::vector<float>& prefix = prefixes[static_cast<size_t>(f)];
    if (!prefix.empty()) in.prefix = prefix.data();
    in.backend = backend.get();
    in.weights = &weights;
    return in;
}

namespace mome {

void tuner_add_facts(mome_tuner& t, const int32_t* tokens, const int32_t* lengths, const int32_t* answer_starts, int32_t n) {
    require_arg(!t.stepped, "facts are added before the first step");
    require_arg(n >= 0 && (n == 0 || (tokens && lengths && answer_starts)), "tokens, fact_lengths and answer_starts are required");
    const mome_llama_config& c = t.bank->model->config;
    if (static_cast<int64_t>(t.n_facts()) + n > (int64_t(1) << 30)) fail(MOME_STATUS_OUT_OF_RANGE, "more than 2^30 facts");
    const int64_t at = check_fact_layout(c, tokens, lengths, answer_starts, n);  // everything checked before anything is added
    t.tokens.insert(t.tokens.end(), tokens, tokens + at);
    for (int32_t f = 0; f < n; ++f) {
        t.starts.push_back(t.starts.back() + lengths[f]);
        t.answer_starts.push_back(answer_starts[f]);
    }
    t.routes.resize(static_cast<size_t>(t.n_facts()));
    t.prefixes.resize(static_cast<size_t>(t.n_facts()));
}

mome_tuner_step_result tuner_step(mome_tuner& t) {
    const mome_tuner_params& p = t.params;
    require_arg(t.n_facts() > 0, "the tuner has no facts: add them first");
    if (t.at.epoch >= p.epochs)
        fail(MOME_STATUS_OUT_OF_RANGE, format("the epoch budget of %d epochs is spent: make a tuner with a larger budget to continue",
                                              p.epochs));
    const bool router_phase = t.at.epoch < p.router_epochs;
    const int32_t first = t.at.position, count = router_phase ? 1 : std::min(p.batch_size, t.n_facts() - first);
    const double progress = (t.at.epoch + static_cast<double>(first) / t.n_facts()) / p.epochs;
    const double lr = learning_rate_at(p, p.learning_rate, t.at.updates, progress);
    const int64_t D = t.bank->model->config.n_embd;

    // The facts, with their cached routes (once the router is frozen) and prefixes, and room
    // for the prefixes the budget still holds.
    std::vector<FactInput> facts;
    std::vector<std::vector<float>> new_prefixes(static_cast<size_t>(count));
    int64_t budget = p.activation_cache_bytes - t.prefix_bytes;
    for (int32_t i = 0; i < count; ++i) {
        FactInput in = t.fact(first + i);
        if (router_phase) in.route_indices = nullptr, in.route_weights = nullptr;
        const int64_t bytes = 2 * in.n * D * static_cast<int64_t>(sizeof(float));
        if (!in.prefix && bytes <= budget) {
            new_prefixes[static_cast<size_t>(i)].resize(static_cast<size_t>(2 * in.n * D));
            in.prefix_out = new_prefixes[static_cast<size_t>(i)].data();
            budget -= bytes;
        }
        facts.push_back(in);
    }

    // A batch that cannot fit is refused before anything runs.
    const uint64_t need = step_bytes(t, facts), limit = step_limit(t);
    if (need > limit)
        fail(MOME_STATUS_OUT_OF_MEMORY, format("a step over facts %d..%d (a batch of %d) needs about %.2f GiB of activations; the limit "
                                               "is %.2f GiB (max_step_bytes, default half the machine's memory): use a smaller batch size",
                                               first + 1, first + count, count, need / 1073741824.0, limit / 1073741824.0));

    mome_tuner_step_result r{};
    r.struct_size = sizeof r;
    r.epoch = t.at.epoch, r.first_fact = first, r.n_facts = count, r.learning_rate = lr, r.router_phase = router_phase;
    std::vector<FactRoute> step_routes;
    ThreadPool& pool = shared_pool(t.n_threads);
    if (router_phase) {
        const bool router_gradients = t.bank->params.routing == MOME_ROUTING_MODE_SEQUENCE;
        FactGradients g = fact_gradients(*t.bank, facts[0], router_gradients, pool, t.n_threads);
        r.loss_sum = g.loss;
        r.n_exact = g.exact();
        if (!r.n_exact) {
            require_finite(g.da, "A"), require_finite(g.db, "B"), require_finite(g.dwq, "W_q"), require_finite(g.dkeys, "the keys");
            update_experts(t, SlotGradients{0, std::move(g.experts), std::move(g.da), std::move(g.db)}, lr);
            if (router_gradients)
                update_router(t, g, learning_rate_at(p, p.router_learning_rate, t.at.updates, progress));
            ++t.at.updates;
        }
    } else {
        BatchStep step = batch_step(*t.bank, facts, BatchOptions{true, true}, pool, t.n_threads, &t.gradient_buffers);
        for (const BatchStep::Fact& f : step.facts) {
            r.loss_sum += f.loss;
            r.n_exact += f.exact();
        }
        if (!step.experts.empty()) {
            require_finite(step.da, "A"), require_finite(step.db, "B");
            for (const SlotGradients& g : step.upper) require_finite(g.da, "A"), require_finite(g.db, "B");
            SlotGradients low{t.bank->lowest_slot(), std::move(step.experts), std::move(step.da), std::move(step.db)};
            update_experts(t, low, lr);
            for (const SlotGradients& g : step.upper) update_experts(t, g, lr);
            ++t.at.updates;
            t.gradient_buffers.da = std::move(low.da), t.gradient_buffers.db = std::move(low.db);  // for the next step
        }
        for (int32_t i = 0; i < count; ++i)
            if (t.routes[static_cast<size_t>(first + i)].indices.empty())
                t.routes[static_cast<size_t>(first + i)] = std::move(step.facts[static_cast<size_t>(i)].route);
    }
    for (int32_t i = 0; i < count; ++i)
        if (!new_prefixes[static_cast<size_t>(i)].empty()) {
            t.prefix_bytes += static_cast<int64_t>(new_prefixes[static_cast<size_t>(i)].size() * sizeof(float));
            t.prefixes[static_cast<size_t>(first + i)] = std::move(new_prefixes[static_cast<size_t>(i)]);
        }
    t.stepped = true;
    r.updates = t.at.updates;
    t.at.epoch_loss += r.loss_sum;
    t.at.epoch_exact += r.n_exact;
    t.at.position += count;
    if (t.at.position == t.n_facts()) {
        r.epoch_done = 1;
        r.epoch_loss = t.at.epoch_loss / t.n_facts();
        r.epoch_exact = t.at.epoch_exact;
        t.at.epoch += 1, t.at.position = 0, t.at.epoch_loss = 0, t.at.epoch_exact = 0;
    }
    return r;
}

int32_t tuner_evaluate(mome_tuner& t, uint8_t* exact) {
    const bool router_phase = t.at.epoch < t.params.router_epochs;
    int32_t n_exact = 0;
    for (int32_t first = 0; first < t.n_facts(); first += t.params.batch_size) {
        const int32_t count = std::min(t.params.batch_size, t.n_facts() - first);
        std::vector<FactInput> facts;
        for (int32_t i = 0; i < count; ++i) {
            FactInput in = t.fact(first + i);
            if (router_phase) in.route_indices = nullptr, in.route_weights = nullptr;
            facts.push_back(in);
        }
        const BatchStep step = batch_step(*t.bank, facts, BatchOptions{false, false}, shared_pool(t.n_threads), t.n_threads);
        for (int32_t i = 0; i < count; ++i) {
            const bool ok = step.facts[static_cast<size_t>(i)].exact();
            n_exact += ok;
            if (exact) exact[first + i] = ok;
        }
    }
    return n_exact;
}

mome_tuner_info tuner_info(const mome_tuner& t) {
    mome_tuner_info info{};
    info.n_facts = t.n_facts();
    info.epoch = t.at.epoch, info.position = t.at.position, info.updates = t.at.updates;
    info.touched_experts = static_cast<int64_t>(t.experts.states().size() / 2);
    const int64_t per_table = t.experts.state_floats() * static_cast<int64_t>(sizeof(float)) + static_cast<int64_t>(sizeof(int64_t));
    info.state_bytes_per_expert = 2 * per_table;
    const auto bytes = [](const SparseOptimizer& o) {
        return static_cast<int64_t>(o.states().size()) * (o.state_floats() * static_cast<int64_t>(sizeof(float)) + 8);
    };
    info.state_bytes = bytes(t.experts) + bytes(t.key_rows) + bytes(t.wq);
    info.activation_bytes = t.prefix_bytes;
    return info;
}

}  // namespace mome
