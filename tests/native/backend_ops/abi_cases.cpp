// The cases through the C ABI on a CUDA device, kept from before the backend interface: the
// router and grouped LoRA (mome_route/mome_lora_apply against their _cuda forms), whole
// sessions CUDA against CPU, device-generated synthetic sessions, a memory-tuning step; and
// their timings (router, sessions of the `small` preset and of a Llama-3-8B shape).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "../abi_structs.h"
#include "cases.h"
#include "mome.h"

namespace backend_ops {

namespace {
int g_failures = 0;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            std::printf("  FAIL %s:%d: ", __FILE__, __LINE__); \
            std::printf(__VA_ARGS__);                     \
            std::printf("\n");                            \
            ++g_failures;                                 \
        }                                                 \
    } while (0)

// A failed call ends the case it is in (run_case reports it) and the run goes on.
void ok(mome_status s, const char* what) {
    if (s != MOME_STATUS_OK) throw std::runtime_error(std::string(what) + ": status " + std::to_string(s) + ": " + mome_last_error());
}

template <typename F>
void run_case(const char* name, F body) {
    try {
        body();
    } catch (const std::exception& e) {
        std::printf("  FAIL %s: %s\n", name, e.what());
        ++g_failures;
    }
}

// mome_route and mome_lora_apply with their desc placed on CUDA device `device`.
mome_status route_cuda(int device, mome_router_desc desc, const float* queries, int64_t n_queries, int32_t* indices, float* weights,
                       float* scores) {
    desc.backend = MOME_BACKEND_CUDA, desc.device = device;
    return mome_route(&desc, queries, n_queries, indices, weights, scores, 0);
}

mome_status lora_cuda(int device, mome_lora_desc desc, const float* u, int64_t n_tokens, const int64_t* offsets, int64_t n_segments,
                      const int32_t* indices, const float* weights, int32_t top_k, float scale, float* out) {
    desc.backend = MOME_BACKEND_CUDA, desc.device = device;
    return mome_lora_apply(&desc, u, n_tokens, offsets, n_segments, indices, weights, top_k, scale, out, 0);
}

// A device buffer with host-side helpers.
class DeviceBuffer {
public:
    DeviceBuffer(int device, size_t bytes) : bytes_(bytes) { ok(mome_device_alloc(MOME_BACKEND_CUDA, device, bytes, &ptr_), "mome_device_alloc"); }
    ~DeviceBuffer() { mome_device_free(MOME_BACKEND_CUDA, ptr_); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    template <typename T>
    T* as() const { return static_cast<T*>(ptr_); }
    void upload(const void* src) { ok(mome_device_copy(MOME_BACKEND_CUDA, ptr_, src, bytes_, MOME_COPY_KIND_HOST_TO_DEVICE), "upload"); }
    template <typename T>
    std::vector<T> download() const {
        std::vector<T> out(bytes_ / sizeof(T));
        ok(mome_device_copy(MOME_BACKEND_CUDA, out.data(), ptr_, bytes_, MOME_COPY_KIND_DEVICE_TO_HOST), "download");
        return out;
    }

private:
    void* ptr_ = nullptr;
    size_t bytes_;
};


// Random values stored in `type`, and the same values back as floats (what both backends see).
// Random values stored in `type`, and the same values back as floats (what both backends see).
std::vector<uint8_t> random_table(mome_tensor_type type, size_t n, float stddev, std::mt19937& rng, std::vector<float>& values) {
    const HostTensor t = random_tensor(type, 1, static_cast<int64_t>(n), stddev, rng);
    values = *t.values;
    return *t.bytes;
}

struct RouterCase {
    mome_router_kind kind;
    mome_tensor_type type;
    int64_t n_experts, key_dim, n_queries;
    int32_t top_k;
};

// The exact (double) score of expert e for a query, from the stored key values.
double exact_score(const RouterCase& c, const std::vector<float>& keys, const float* q, int64_t e) {
    double dot = 0;
    if (c.kind == MOME_ROUTER_KIND_FLAT) {
        for (int64_t i = 0; i < c.key_dim; ++i) dot += static_cast<double>(q[i]) * keys[static_cast<size_t>(e * c.key_dim + i)];
    } else {
        const int64_t n_sub = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(c.n_experts)))), half = c.key_dim / 2;
        const int64_t a = e / n_sub, b = e % n_sub;
        for (int64_t i = 0; i < half; ++i) {
            dot += static_cast<double>(q[i]) * keys[static_cast<size_t>(a * half + i)];
            dot += static_cast<double>(q[half + i]) * keys[static_cast<size_t>((n_sub + b) * half + i)];
        }
    }
    return dot / std::sqrt(static_cast<double>(c.key_dim));
}

void test_router(int device, const RouterCase& c, std::mt19937& rng) {
    const size_t n_keys = c.kind == MOME_ROUTER_KIND_FLAT ? static_cast<size_t>(c.n_experts * c.key_dim)
                                                          : static_cast<size_t>(2 * std::llround(std::sqrt(double(c.n_experts))) * (c.key_dim / 2));
    std::vector<float> key_values, queries;
    const std::vector<uint8_t> keys = random_table(c.type, n_keys, 1.0f, rng, key_values);
    random_table(MOME_TENSOR_TYPE_F32, static_cast<size_t>(c.n_queries * c.key_dim), 1.0f, rng, queries);
    mome_router_desc desc{sizeof(mome_router_desc), c.kind, c.type, c.n_experts, c.key_dim, keys.data(), c.top_k, 0.7f};
    const size_t n_out = static_cast<size_t>(c.n_queries * c.top_k);
    std::vector<int32_t> cpu_idx(n_out);
    std::vector<float> cpu_w(n_out), cpu_s(n_out);
    ok(mome_route(&desc, queries.data(), c.n_queries, cpu_idx.data(), cpu_w.data(), cpu_s.data(), 0), "mome_route (CPU)");

    DeviceBuffer d_keys(device, keys.size()), d_q(device, queries.size() * 4), d_idx(device, n_out * 4), d_w(device, n_out * 4),
        d_s(device, n_out * 4);
    d_keys.upload(keys.data());
    d_q.upload(queries.data());
    const std::vector<float> poison(n_out, NAN);
    d_w.upload(poison.data());
    d_s.upload(poison.data());
    desc.keys = d_keys.as<void>();
    ok(route_cuda(device, desc, d_q.as<float>(), c.n_queries, d_idx.as<int32_t>(), d_w.as<float>(), d_s.as<float>()),
       "mome_route on CUDA");
    const auto idx = d_idx.download<int32_t>();
    const auto w = d_w.download<float>(), s = d_s.download<float>();

    // Tensor cores see queries rounded to the keys' type: allow that much in scores.
    const double q_eps = c.type == MOME_TENSOR_TYPE_BF16 ? 8e-3 : c.type == MOME_TENSOR_TYPE_F16 ? 1e-3 : 1e-5;
    int mismatched = 0;
    for (int64_t q = 0; q < c.n_queries; ++q) {
        const float* qv = queries.data() + q * c.key_dim;
        double norm = 0;
        for (int64_t i = 0; i < c.key_dim; ++i) norm += static_cast<double>(qv[i]) * qv[i];
        const double tol = q_eps * std::sqrt(norm) * 2.0;  // |q| |k| / sqrt(d) with |k| ~ sqrt(d)
        const double kth = exact_score(c, key_values, qv, cpu_idx[static_cast<size_t>(q * c.top_k + c.top_k - 1)]);
        std::set<int32_t> seen, cpu_set(cpu_idx.begin() + q * c.top_k, cpu_idx.begin() + (q + 1) * c.top_k);
        double sum = 0;
        for (int j = 0; j < c.top_k; ++j) {
            const size_t at = static_cast<size_t>(q * c.top_k + j);
            CHECK(idx[at] >= 0 && idx[at] < c.n_experts, "query %lld entry %d: index %d out of range", (long long)q, j, idx[at]);
            if (idx[at] < 0 || idx[at] >= c.n_experts) return;
            CHECK(seen.insert(idx[at]).second, "query %lld: index %d twice", (long long)q, idx[at]);
            const double exact = exact_score(c, key_values, qv, idx[at]);
            CHECK(std::fabs(s[at] - exact) <= tol, "query %lld entry %d: score %g, exact %g (tol %g)", (long long)q, j, s[at], exact, tol);
            CHECK(exact >= kth - 2 * tol, "query %lld: expert %d (exact %g) is below the CPU's k-th best %g", (long long)q, idx[at], exact, kth);
            if (j > 0) CHECK(s[at] <= s[at - 1], "query %lld: scores not best first at %d", (long long)q, j);
            CHECK(std::isfinite(w[at]) && w[at] >= 0, "query %lld entry %d: weight %g", (long long)q, j, w[at]);
            sum += w[at];
            if (!cpu_set.count(idx[at])) ++mismatched;
        }
        CHECK(std::fabs(sum - 1.0) < 1e-4, "query %lld: weights sum to %g", (long long)q, sum);
    }
    if (c.type == MOME_TENSOR_TYPE_F32) CHECK(mismatched == 0, "%d indices differ from the CPU's with F32 keys", mismatched);
    else CHECK(mismatched <= std::max<int64_t>(1, c.n_queries * c.top_k / 50), "%d indices differ from the CPU's (only near-ties may)", mismatched);
    if (mismatched == 0) {
        const double e = rel_error(w, cpu_w);
        CHECK(e < (c.type == MOME_TENSOR_TYPE_F32 ? 1e-5 : 5e-2), "weights: relative error %g", e);
    }
    std::printf("  router %s %s N=%lld d=%lld B=%lld k=%d: %d of %lld indices differ (near-ties)\n",
                c.kind == MOME_ROUTER_KIND_FLAT ? "flat" : "product", type_name(c.type), (long long)c.n_experts, (long long)c.key_dim,
                (long long)c.n_queries, c.top_k, mismatched, (long long)(c.n_queries * c.top_k));
}

struct LoraCase {
    mome_tensor_type type;
    int64_t n_experts, dim;
    int32_t rank, top_k;
    std::vector<int64_t> segment_lengths;  // one entry per segment (1s: the per-token form)
};

void test_lora(int device, const LoraCase& c, std::mt19937& rng) {
    std::vector<int64_t> offsets{0};
    for (int64_t len : c.segment_lengths) offsets.push_back(offsets.back() + len);
    const int64_t n_tokens = offsets.back(), n_segments = static_cast<int64_t>(c.segment_lengths.size());
    std::vector<float> a_values, b_values, u, out0;
    const size_t table = static_cast<size_t>(c.n_experts * c.rank * c.dim);
    const auto a = random_table(c.type, table, 0.3f, rng, a_values);
    const auto b = random_table(c.type, table, 0.3f, rng, b_values);
    random_table(MOME_TENSOR_TYPE_F32, static_cast<size_t>(n_tokens * c.dim), 1.0f, rng, u);
    random_table(MOME_TENSOR_TYPE_F32, static_cast<size_t>(n_tokens * c.dim), 1.0f, rng, out0);
    std::vector<int32_t> indices(static_cast<size_t>(n_segments * c.top_k));
    std::vector<float> weights(indices.size());
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(c.n_experts - 1));
    std::uniform_real_distribution<float> weight(0.0f, 1.0f);
    for (size_t i = 0; i < indices.size(); ++i) indices[i] = pick(rng), weights[i] = weight(rng);
    mome_lora_desc desc{sizeof(mome_lora_desc), c.type, c.n_experts, c.dim, c.rank, a.data(), b.data()};
    std::vector<float> cpu = out0;
    ok(mome_lora_apply(&desc, u.data(), n_tokens, offsets.data(), n_segments, indices.data(), weights.data(), c.top_k, 1.5f, cpu.data(), 0),
       "mome_lora_apply (CPU)");

    DeviceBuffer d_a(device, a.size()), d_b(device, b.size()), d_u(device, u.size() * 4), d_out(device, out0.size() * 4),
        d_off(device, offsets.size() * 8), d_idx(device, indices.size() * 4), d_w(device, weights.size() * 4);
    d_a.upload(a.data()), d_b.upload(b.data()), d_u.upload(u.data()), d_out.upload(out0.data());
    d_off.upload(offsets.data()), d_idx.upload(indices.data()), d_w.upload(weights.data());
    desc.a = d_a.as<void>(), desc.b = d_b.as<void>();
    ok(lora_cuda(device, desc, d_u.as<float>(), n_tokens, d_off.as<int64_t>(), n_segments, d_idx.as<int32_t>(),
                            d_w.as<float>(), c.top_k, 1.5f, d_out.as<float>()),
       "mome_lora_apply on CUDA");
    const auto gpu = d_out.download<float>();
    std::vector<float> delta_gpu(gpu.size()), delta_cpu(cpu.size());
    for (size_t i = 0; i < gpu.size(); ++i) delta_gpu[i] = gpu[i] - out0[i], delta_cpu[i] = cpu[i] - out0[i];
    const double e = rel_error(delta_gpu, delta_cpu);
    CHECK(e < 1e-4, "grouped LoRA %s: relative error of the update %g", type_name(c.type), e);
    std::printf("  lora %s d=%lld r=%d k=%d segments=%lld tokens=%lld: relative error %.2e\n", type_name(c.type), (long long)c.dim, c.rank,
                c.top_k, (long long)n_segments, (long long)n_tokens, e);

    // A bad index is reported and nothing is written.
    indices[indices.size() / 2] = static_cast<int32_t>(c.n_experts);
    d_idx.upload(indices.data());
    const mome_status s = lora_cuda(device, desc, d_u.as<float>(), n_tokens, d_off.as<int64_t>(), n_segments,
                                               d_idx.as<int32_t>(), d_w.as<float>(), c.top_k, 1.5f, d_out.as<float>());
    CHECK(s == MOME_STATUS_OUT_OF_RANGE, "a bad expert index gave status %d (%s)", s, mome_last_error());
    CHECK(d_out.download<float>() == gpu, "a refused call changed out");
}

void test_bad_router_input(int device, std::mt19937& rng) {
    const RouterCase c{MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_BF16, 512, 64, 4, 8};
    std::vector<float> key_values, queries;
    const auto keys = random_table(c.type, 512 * 64, 1.0f, rng, key_values);
    random_table(MOME_TENSOR_TYPE_F32, 4 * 64, 1.0f, rng, queries);
    queries[70] = NAN;
    DeviceBuffer d_keys(device, keys.size()), d_q(device, queries.size() * 4), d_idx(device, 32 * 4), d_w(device, 32 * 4);
    d_keys.upload(keys.data());
    d_q.upload(queries.data());
    mome_router_desc desc{sizeof(mome_router_desc), c.kind, c.type, c.n_experts, c.key_dim, d_keys.as<void>(), c.top_k, 1.0f};
    mome_status s = route_cuda(device, desc, d_q.as<float>(), 4, d_idx.as<int32_t>(), d_w.as<float>(), nullptr);
    CHECK(s == MOME_STATUS_INVALID_ARGUMENT && std::strstr(mome_last_error(), "not finite"), "a NaN query gave %d (%s)", s, mome_last_error());
    desc.top_k = 33;
    s = route_cuda(device, desc, d_q.as<float>(), 4, d_idx.as<int32_t>(), d_w.as<float>(), nullptr);
    CHECK(s == MOME_STATUS_UNSUPPORTED, "top_k 33 gave %d (%s)", s, mome_last_error());
}


// Device-generated synthetic models: the same seed gives the same logits, another seed others.
void test_synthetic_sessions(int device) {
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    ok(mome_synthetic_preset("tiny", &sp), "preset");
    sp.weight_type = MOME_TENSOR_TYPE_BF16, sp.init_std = 0.3f;
    std::vector<std::vector<float>> logits;
    for (uint64_t seed : {5, 5, 6}) {
        sp.seed = seed;
        mome_session_params p = session_defaults();
        p.n_ctx = 32, p.backend = MOME_BACKEND_CUDA, p.device = device;
        mome_session* s = nullptr;
        ok(mome_session_create_synthetic(&sp, &p, &s), "synthetic session");
        const std::vector<int32_t> tokens = {1, 70, 80, 90}, positions = {0, 1, 2, 3}, seqs = {0, 0, 0, 0};
        const mome_batch b{sizeof(mome_batch), 4, tokens.data(), positions.data(), seqs.data(), nullptr};
        logits.emplace_back(static_cast<size_t>(sp.n_vocab), NAN);
        ok(mome_session_decode(s, &b, logits.back().data(), logits.back().size()), "decode");
        mome_session_free(s);
    }
    bool finite = true;
    for (float v : logits[0]) finite = finite && std::isfinite(v);
    CHECK(finite, "synthetic session: logits not finite");
    CHECK(logits[0] == logits[1], "synthetic session: the same seed gave different logits");
    CHECK(logits[0] != logits[2], "synthetic session: another seed gave the same logits");
    std::printf("  synthetic device sessions: deterministic by seed\n");
}

// Whole models: a CUDA session's logits against a CPU session's, on synthetic models (F32:
// the same function up to summation order; BF16: both round activations to BF16 before each
// projection), over a batch of two interleaved sequences and then token-by-token decode.
void test_session(int device, mome_tensor_type type, bool llama3, bool tied, mome_routing_mode routing = MOME_ROUTING_MODE_SEQUENCE,
                  bool with_bank = false) {
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    ok(mome_synthetic_preset("tiny", &sp), "preset");
    sp.weight_type = type, sp.tied_output = tied, sp.init_std = 0.25f, sp.n_head = 6, sp.n_head_kv = 2, sp.head_dim = 24;
    if (llama3) sp.rope_scaling = MOME_ROPE_SCALING_LLAMA3, sp.rope_freq_base = 500000.0f, sp.rope_scaling_factor = 8.0f;
    const std::string path = "/tmp/mome_backend_ops_" + std::to_string(static_cast<int>(type)) + std::to_string(llama3) + ".gguf";
    ok(mome_synthetic_write(&sp, path.c_str()), "synthetic model");
    mome_model* model = nullptr;
    ok(mome_model_open(path.c_str(), nullptr, &model), "model open");
    // A bank with random B (a fresh bank's B = 0 would change nothing) at block 0 of 2.
    mome_bank* bank = nullptr;
    if (with_bank) {
        mome_bank_params bp = bank_defaults();
        bp.n_layers = 1, bp.layers[0] = 0, bp.n_experts = 4096, bp.key_dim = 32, bp.top_k = 16, bp.rank = 4, bp.alpha = 4;
        bp.routing = routing, bp.weight_type = type;
        ok(mome_bank_create(model, &bp, &bank), "bank");
        std::mt19937 rng(9);
        std::normal_distribution<float> normal(0.0f, 0.2f);
        std::vector<float> values(static_cast<size_t>(bp.rank * sp.n_embd));
        for (int64_t e = 0; e < bp.n_experts; ++e) {
            for (float& v : values) v = normal(rng);
            ok(mome_bank_set_expert(bank, 0, e, nullptr, values.data()), "set expert");
        }
    }
    mome_session_params cpu = session_defaults();
    cpu.n_ctx = 128, cpu.n_seq_max = 2, cpu.bank = bank;
    mome_session_params gpu = cpu;
    gpu.backend = MOME_BACKEND_CUDA, gpu.device = device;
    mome_session *a = nullptr, *b = nullptr;
    ok(mome_session_create(model, &cpu, &a), "CPU session");
    ok(mome_session_create(model, &gpu, &b), "CUDA session");
    const int64_t vocab = sp.n_vocab;
    double worst = 0;
    // Step 0: 12 tokens of sequence 0 and 7 of sequence 1, interleaved; then 5 decode steps of both.
    std::vector<int32_t> next = {0, 0};
    for (int step = 0; step < 6; ++step) {
        std::vector<int32_t> tokens, positions, seqs;
        std::vector<uint8_t> want;
        for (int i = 0; i < (step == 0 ? 12 : 1); ++i)
            for (int seq = 0; seq < 2; ++seq) {
                if (step == 0 && seq == 1 && i >= 7) continue;
                tokens.push_back(static_cast<int32_t>((37 * (step * 13 + i) + 11 * seq) % vocab));
                positions.push_back(next[static_cast<size_t>(seq)]++);
                seqs.push_back(seq);
                want.push_back(1);
            }
        const mome_batch batch{sizeof(mome_batch), static_cast<int32_t>(tokens.size()), tokens.data(), positions.data(), seqs.data(), want.data()};
        std::vector<float> la(tokens.size() * vocab), lb(la.size(), NAN);
        ok(mome_session_decode(a, &batch, la.data(), la.size()), "CPU decode");
        ok(mome_session_decode(b, &batch, lb.data(), lb.size()), "CUDA decode");
        worst = std::max(worst, rel_error(lb, la));
    }
    const double bound = type == MOME_TENSOR_TYPE_F32 ? 1e-4 : 1e-2;
    CHECK(worst <= bound, "session logits %s llama3=%d tied=%d bank=%d: relative error %g > %g", type_name(type), llama3, tied, with_bank,
          worst, bound);
    std::printf("  session %s GQA 6/2 llama3=%d tied=%d bank=%s, 2 sequences, prefill + 5 decode steps: relative error %.2e\n",
                type_name(type), llama3, tied, !with_bank ? "none" : routing == MOME_ROUTING_MODE_TOKEN ? "per-token" : "per-sequence", worst);
    mome_session_free(a);
    mome_session_free(b);
    mome_bank_free(bank);
    mome_model_free(model);
    std::remove(path.c_str());
}

// A memory-tuning step on the device against the CPU's (loss, route, expert gradients), then
// a short loss curve: the same plain gradient steps applied from both backends' gradients.
void test_tuning_step(int device, mome_tensor_type type) {
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    ok(mome_synthetic_preset("tiny", &sp), "preset");
    sp.weight_type = type, sp.init_std = 0.25f;
    const std::string path = "/tmp/mome_backend_ops_tune.gguf";
    ok(mome_synthetic_write(&sp, path.c_str()), "synthetic model");
    mome_model* model = nullptr;
    ok(mome_model_open(path.c_str(), nullptr, &model), "model open");
    mome_bank_params bp = bank_defaults();
    bp.n_layers = 1, bp.layers[0] = 0, bp.n_experts = 1024, bp.key_dim = 32, bp.top_k = 8, bp.rank = 2, bp.alpha = 4;
    mome_bank *cpu_bank = nullptr, *gpu_bank = nullptr;
    ok(mome_bank_create(model, &bp, &cpu_bank), "bank");
    ok(mome_bank_create(model, &bp, &gpu_bank), "bank");  // same seed: the same bank
    mome_session_params p = session_defaults();
    p.n_ctx = 16, p.backend = MOME_BACKEND_CUDA, p.device = device;
    mome_session* session = nullptr;
    ok(mome_session_create(model, &p, &session), "CUDA session");
    const std::vector<int32_t> tokens = {1, 40, 41, 42, 43, 44, 60, 61, 62, 63, 64};
    const int32_t answer_start = 6;
    const int64_t per_expert = bp.rank * sp.n_embd, k = bp.top_k;
    std::vector<double> cpu_curve, gpu_curve;
    double worst = 0;
    for (int step = 0; step < 8; ++step) {
        std::vector<int32_t> idx[2] = {std::vector<int32_t>(k), std::vector<int32_t>(k)};
        std::vector<float> w[2] = {std::vector<float>(k), std::vector<float>(k)};
        std::vector<float> da[2] = {std::vector<float>(k * per_expert), std::vector<float>(k * per_expert)};
        std::vector<float> db[2] = {da[0], da[1]};
        mome_fact_result result[2];
        for (int backend = 0; backend < 2; ++backend) {
            mome_fact_desc fact{sizeof(mome_fact_desc), tokens.data(), static_cast<int32_t>(tokens.size()), answer_start, nullptr, nullptr, nullptr, nullptr,
                                backend ? session : nullptr};
            mome_fact_grads out = sized<mome_fact_grads>();
            out.indices = idx[backend].data(), out.weights = w[backend].data(), out.da = da[backend].data(), out.db = db[backend].data();
            ok(mome_bank_fact_backward(backend ? gpu_bank : cpu_bank, &fact, &out, 0), backend ? "CUDA step" : "CPU step");
            result[backend] = out.result;
            // Plain gradient descent on the routed experts (the same rule for both backends).
            for (int64_t j = 0; j < k; ++j) {
                std::vector<float> a(static_cast<size_t>(per_expert)), bb(a.size());
                mome_bank* bank = backend ? gpu_bank : cpu_bank;
                ok(mome_bank_get_expert(bank, 0, idx[backend][static_cast<size_t>(j)], a.data(), bb.data()), "get expert");
                for (int64_t i = 0; i < per_expert; ++i)
                    a[static_cast<size_t>(i)] -= 0.5f * da[backend][static_cast<size_t>(j * per_expert + i)],
                        bb[static_cast<size_t>(i)] -= 0.5f * db[backend][static_cast<size_t>(j * per_expert + i)];
                ok(mome_bank_set_expert(bank, 0, idx[backend][static_cast<size_t>(j)], a.data(), bb.data()), "set expert");
            }
        }
        CHECK(idx[0] == idx[1], "step %d: the CUDA step routed differently", step);
        if (step == 0) {
            worst = std::max(rel_error(da[1], da[0]), rel_error(db[1], db[0]));
            CHECK(worst < (type == MOME_TENSOR_TYPE_F32 ? 1e-4 : 2e-2), "tuning step %s: expert gradients differ by %g", type_name(type), worst);
        }
        cpu_curve.push_back(result[0].loss);
        gpu_curve.push_back(result[1].loss);
        CHECK(std::fabs(result[0].loss - result[1].loss) <= (type == MOME_TENSOR_TYPE_F32 ? 1e-4 : 2e-2) * std::max(1.0, double(result[0].loss)),
              "step %d: loss %g on CUDA, %g on the CPU", step, result[1].loss, result[0].loss);
    }
    std::printf("  tuning step %s: gradients relative error %.2e; loss curve CPU", type_name(type), worst);
    for (double l : cpu_curve) std::printf(" %.4f", l);
    std::printf(" | CUDA");
    for (double l : gpu_curve) std::printf(" %.4f", l);
    std::printf("\n");
    mome_session_free(session);
    mome_bank_free(cpu_bank);
    mome_bank_free(gpu_bank);
    mome_model_free(model);
    std::remove(path.c_str());
}
}  // namespace

int run_abi_tests(int device, unsigned seed) {
    g_failures = 0;
    std::mt19937 rng(seed);
    for (auto kind : {MOME_ROUTER_KIND_FLAT, MOME_ROUTER_KIND_PRODUCT})
        for (auto type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16})
            for (const RouterCase& shape : {RouterCase{kind, type, 1024, 8, 1, 1}, RouterCase{kind, type, 4096, 100, 3, 8},
                                            RouterCase{kind, type, 65536, 128, 70, 32}, RouterCase{kind, type, 16384, 256, 130, 32},
                                            RouterCase{kind, type, 1 << 20, 128, 16, 32}})
                run_case("router", [&] { test_router(device, shape, rng); });
    run_case("router bad input", [&] { test_bad_router_input(device, rng); });
    for (auto type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16}) {
        run_case("lora", [&] { test_lora(device, LoraCase{type, 64, 100, 1, 1, {1, 3, 0, 5}}, rng); });
        run_case("lora per token", [&] { test_lora(device, LoraCase{type, 4096, 4096, 4, 32, std::vector<int64_t>(64, 1)}, rng); });
        run_case("lora per sequence", [&] { test_lora(device, LoraCase{type, 1024, 4096, 8, 32, {17, 1, 40, 2}}, rng); });
    }
    run_case("synthetic sessions", [&] { test_synthetic_sessions(device); });
    run_case("tuning step", [&] { test_tuning_step(device, MOME_TENSOR_TYPE_F32); });  // (BF16 could route near-ties differently)
    run_case("session F32", [&] { test_session(device, MOME_TENSOR_TYPE_F32, false, false); });
    run_case("session F32 llama3 tied", [&] { test_session(device, MOME_TENSOR_TYPE_F32, true, true); });
    run_case("session BF16", [&] { test_session(device, MOME_TENSOR_TYPE_BF16, false, false); });
    run_case("session F16 llama3", [&] { test_session(device, MOME_TENSOR_TYPE_F16, true, false); });
    // With BF16 weights the two backends' routing inputs differ by BF16 rounding, so a
    // near-tie could route differently: banks are compared on F32 models.
    run_case("session bank per sequence", [&] { test_session(device, MOME_TENSOR_TYPE_F32, false, false, MOME_ROUTING_MODE_SEQUENCE, true); });
    run_case("session bank per token", [&] { test_session(device, MOME_TENSOR_TYPE_F32, false, false, MOME_ROUTING_MODE_TOKEN, true); });
    return g_failures;
}

namespace {

// Median wall time of `runs` synchronised calls, in microseconds.
template <typename F>
double median_us(int device, int runs, F call) {
    call();
    ok(mome_device_synchronize(MOME_BACKEND_CUDA, device), "synchronize");
    std::vector<double> times;
    for (int i = 0; i < runs; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        call();
        ok(mome_device_synchronize(MOME_BACKEND_CUDA, device), "synchronize");
        times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}


}  // namespace

int run_abi_perf(int device) {
    g_failures = 0;
    run_case("perf", [&] {
    std::mt19937 rng(7);
    const int64_t n = 1 << 20;
    for (int64_t d : {128, 256}) {
        std::vector<float> kv;
        const auto keys = random_table(MOME_TENSOR_TYPE_BF16, static_cast<size_t>(n * d), 1.0f, rng, kv);
        DeviceBuffer d_keys(device, keys.size());
        d_keys.upload(keys.data());
        for (int64_t b : {1, 16, 64, 256, 1024}) {
            std::vector<float> q;
            random_table(MOME_TENSOR_TYPE_F32, static_cast<size_t>(b * d), 1.0f, rng, q);
            DeviceBuffer d_q(device, q.size() * 4), d_idx(device, b * 32 * 4), d_w(device, b * 32 * 4);
            d_q.upload(q.data());
            const mome_router_desc desc{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_BF16, n, d, d_keys.as<void>(), 32, 1.0f};
            const double us = median_us(device, 20, [&] {
                ok(route_cuda(device, desc, d_q.as<float>(), b, d_idx.as<int32_t>(), d_w.as<float>(), nullptr), "route");
            });
            std::printf("perf router flat BF16 N=%lld d=%lld B=%lld k=32: %.1f us\n", (long long)n, (long long)d, (long long)b, us);
        }
    }
    // Whole-model decode on the `small` synthetic preset (~100M, BF16): tokens/s by batch.
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    ok(mome_synthetic_preset("small", &sp), "preset");
    sp.weight_type = MOME_TENSOR_TYPE_BF16;
    const std::string path = "/tmp/mome_backend_ops_small.gguf";
    ok(mome_synthetic_write(&sp, path.c_str()), "synthetic model");
    mome_model* model = nullptr;
    ok(mome_model_open(path.c_str(), nullptr, &model), "model open");
    for (int32_t batch : {1, 16, 64}) {
        mome_session_params p = session_defaults();
        p.n_ctx = 512, p.n_seq_max = batch, p.backend = MOME_BACKEND_CUDA, p.device = device;
        mome_session* s = nullptr;
        ok(mome_session_create(model, &p, &s), "CUDA session");
        std::vector<int32_t> tokens, positions, seqs;
        for (int32_t q = 0; q < batch; ++q)
            for (int32_t t = 0; t < 128; ++t) tokens.push_back((t * 31 + q) % 1000), positions.push_back(t), seqs.push_back(q);
        const mome_batch prompt{sizeof(mome_batch), static_cast<int32_t>(tokens.size()), tokens.data(), positions.data(), seqs.data(), nullptr};
        std::vector<float> logits(static_cast<size_t>(batch) * sp.n_vocab);
        const auto t0 = std::chrono::steady_clock::now();
        ok(mome_session_decode(s, &prompt, logits.data(), logits.size()), "prefill");
        const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::vector<uint8_t> want(static_cast<size_t>(batch), 1);
        const int steps = 32;
        const auto t1 = std::chrono::steady_clock::now();
        for (int step = 0; step < steps; ++step) {
            tokens.assign(static_cast<size_t>(batch), 7 + step);
            positions.assign(static_cast<size_t>(batch), 128 + step);
            seqs.resize(static_cast<size_t>(batch));
            std::iota(seqs.begin(), seqs.end(), 0);
            const mome_batch next{sizeof(mome_batch), batch, tokens.data(), positions.data(), seqs.data(), want.data()};
            ok(mome_session_decode(s, &next, logits.data(), logits.size()), "decode");
        }
        const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        std::printf("perf session small BF16 batch=%d: prefill %.0f tokens/s (128 per sequence), decode %.0f tokens/s\n", batch,
                    batch * 128 / prefill_s, batch * steps / decode_s);
        mome_session_free(s);
    }
    mome_model_free(model);
    std::remove(path.c_str());

    // Llama-3-8B shape, weights generated on the device (no 16 GB file): prefill of a
    // 2048-token prompt, decode at batch 1, 16 and 64, and the weight-bandwidth floor.
    mome_synthetic_params big = sp;
    big.n_vocab = 128256, big.n_ctx_train = 8192, big.n_embd = 4096, big.n_layer = 32, big.n_head = 32, big.n_head_kv = 8;
    big.head_dim = 128, big.n_ff = 14336, big.rope_freq_base = 500000.0f, big.rope_scaling = MOME_ROPE_SCALING_LLAMA3;
    big.rope_scaling_factor = 8.0f, big.rope_low_freq_factor = 1.0f, big.rope_high_freq_factor = 4.0f, big.rope_original_context = 8192;
    big.weight_type = MOME_TENSOR_TYPE_BF16, big.init_std = 0.02f, big.tied_output = 0, big.seed = 1;
    const double weight_bytes = 2.0 * (2.0 * big.n_vocab * big.n_embd +
                                       big.n_layer * (2.0 * big.n_embd * big.n_embd + 2.0 * big.n_embd * 1024 + 3.0 * big.n_embd * big.n_ff));
    for (const auto& [batch, prompt] : std::vector<std::pair<int32_t, int32_t>>{{1, 2048}, {16, 128}, {64, 128}}) {
        mome_session_params p = session_defaults();
        p.n_ctx = prompt + 40, p.n_seq_max = batch, p.backend = MOME_BACKEND_CUDA, p.device = device;
        mome_session* s = nullptr;
        if (mome_session_create_synthetic(&big, &p, &s) != MOME_STATUS_OK) {
            std::printf("perf llama3-8b shape batch=%d: session failed: %s\n", batch, mome_last_error());
            continue;
        }
        std::vector<int32_t> tokens, positions, seqs;
        for (int32_t q = 0; q < batch; ++q)
            for (int32_t t = 0; t < prompt; ++t) tokens.push_back((t * 7919 + q) % 128000), positions.push_back(t), seqs.push_back(q);
        std::vector<float> logits(static_cast<size_t>(batch) * big.n_vocab);
        const mome_batch first{sizeof(mome_batch), static_cast<int32_t>(tokens.size()), tokens.data(), positions.data(), seqs.data(), nullptr};
        const auto t0 = std::chrono::steady_clock::now();
        ok(mome_session_decode(s, &first, logits.data(), logits.size()), "prefill");
        const double prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::vector<uint8_t> want(static_cast<size_t>(batch), 1);
        const int steps = 32;
        double decode_s = 0;
        for (int step = 0; step < steps; ++step) {
            tokens.assign(static_cast<size_t>(batch), 11 + step);
            positions.assign(static_cast<size_t>(batch), prompt + step);
            seqs.resize(static_cast<size_t>(batch));
            std::iota(seqs.begin(), seqs.end(), 0);
            const mome_batch next{sizeof(mome_batch), batch, tokens.data(), positions.data(), seqs.data(), want.data()};
            const auto t1 = std::chrono::steady_clock::now();
            ok(mome_session_decode(s, &next, logits.data(), logits.size()), "decode");
            if (step >= 2) decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();  // 2 warm-up steps
        }
        const double per_step = decode_s / (steps - 2);
        std::printf("perf llama3-8b shape BF16 batch=%d: prefill %.0f tokens/s (%d per sequence), decode %.0f tokens/s (%.2f ms a step; "
                    "weights %.1f GB)\n",
                    batch, batch * prompt / prefill_s, prompt, batch / per_step, per_step * 1e3, weight_bytes / 1e9);
        mome_session_free(s);
    }
    });
    return g_failures;
}

}  // namespace backend_ops
