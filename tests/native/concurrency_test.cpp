// Several threads sharing one model and one bank: each with its own session decoding with the
// bank, routing through the bank and through the standalone router, applying the grouped
// LoRA operator and taking a fact's gradients, all at once. Every result must equal what the
// same call gave on one thread beforehand, and each thread's mome_last_error() must be its
// own. Run under -DMOME_SANITIZE=thread (tests/sanitize/run.sh --sanitize thread) to check
// for data races as well.
#include <algorithm>
#include <condition_variable>
#include <gtest/gtest.h>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "abi_structs.h"
#include "mome.h"
#include "tiny_model.h"
#include "test_seed.h"

namespace {

constexpr int kThreads = 4, kRounds = 3;
constexpr int64_t kExperts = 64, kKeyDim = 8;
constexpr int32_t kTopK = 4, kRank = 2;

// All threads wait here until every one has arrived, so that their calls overlap.
class Barrier {
public:
    explicit Barrier(int n) : n_(n) {}
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        const int generation = generation_;
        if (++arrived_ == n_) {
            arrived_ = 0;
            ++generation_;
            cv_.notify_all();
        } else {
            cv_.wait(lock, [&] { return generation != generation_; });
        }
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    const int n_;
    int arrived_ = 0, generation_ = 0;
};

struct Results {
    std::vector<float> logits;
    std::vector<int32_t> bank_indices, router_indices;
    std::vector<float> bank_weights, lora_out;
    std::vector<float> da;
    float loss = 0;
};

const std::vector<int32_t> kTokens = {1, 300, 301, 302, 303, 304, 305, 306};

std::vector<float> queries_for(int seed) {
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> q(static_cast<size_t>(3 * kKeyDim));
    for (float& v : q) v = normal(rng);
    return q;
}

// Everything one thread does; `seed` picks its inputs, so threads differ from each other.
Results work(const mome_model* model, const mome_bank* bank, const std::vector<float>& keys, const std::vector<float>& experts,
             int64_t n_embd, int seed) {
    Results r;
    mome_session_params sp = session_defaults();
    sp.n_ctx = 16;
    sp.n_threads = 2;
    sp.bank = bank;
    mome_session* session = nullptr;
    EXPECT_EQ(mome_session_create(model, &sp, &session), MOME_STATUS_OK) << mome_last_error();
    if (!session) return r;
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::vector<int32_t> tokens = kTokens;
    std::shuffle(tokens.begin() + 1, tokens.end(), rng);
    std::vector<int32_t> positions(tokens.size()), seqs(tokens.size(), 0);
    for (size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<int32_t>(i);
    mome_llama_config c{};
    EXPECT_EQ(mome_model_get_config(model, &c), MOME_STATUS_OK);
    r.logits.resize(static_cast<size_t>(c.n_vocab));
    const mome_batch batch{sizeof(mome_batch), static_cast<int32_t>(tokens.size()), tokens.data(), positions.data(), seqs.data(), nullptr};
    EXPECT_EQ(mome_session_decode(session, &batch, r.logits.data(), r.logits.size()), MOME_STATUS_OK) << mome_last_error();
    mome_session_free(session);

    const std::vector<float> q = queries_for(seed);
    r.bank_indices.resize(3 * kTopK);
    r.bank_weights.resize(3 * kTopK);
    EXPECT_EQ(mome_bank_route(bank, 0, q.data(), 3, r.bank_indices.data(), r.bank_weights.data(), 2), MOME_STATUS_OK);

    const mome_router_desc router{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, kExperts, kKeyDim, keys.data(), kTopK, 0.5f};
    r.router_indices.resize(3 * kTopK);
    std::vector<float> w(3 * kTopK);
    EXPECT_EQ(mome_route(&router, q.data(), 3, r.router_indices.data(), w.data(), nullptr, 2), MOME_STATUS_OK);

    const mome_lora_desc lora{sizeof(mome_lora_desc), MOME_TENSOR_TYPE_F32, kExperts, n_embd, kRank, experts.data(), experts.data()};
    std::vector<float> u(static_cast<size_t>(3 * n_embd));
    for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<float>((i * 7 + static_cast<size_t>(seed)) % 13) / 13.0f;
    const int64_t offsets[2] = {0, 3};
    r.lora_out.assign(u.size(), 0.0f);
    EXPECT_EQ(mome_lora_apply(&lora, u.data(), 3, offsets, 1, r.router_indices.data(), w.data(), kTopK, 0.5f, r.lora_out.data(), 2),
              MOME_STATUS_OK)
        << mome_last_error();

    std::vector<int32_t> gi(kTopK);
    std::vector<float> gw(kTopK);
    r.da.resize(static_cast<size_t>(kTopK * kRank * n_embd));
    std::vector<float> db(r.da.size());
    mome_fact_desc fact = sized<mome_fact_desc>();
    fact.tokens = tokens.data();
    fact.n_tokens = static_cast<int32_t>(tokens.size());
    fact.answer_start = 5;
    mome_fact_grads grads = sized<mome_fact_grads>();
    grads.indices = gi.data(), grads.weights = gw.data(), grads.da = r.da.data(), grads.db = db.data();
    EXPECT_EQ(mome_bank_fact_backward(bank, &fact, &grads, 2), MOME_STATUS_OK) << mome_last_error();
    r.loss = grads.result.loss;
    return r;
}

void expect_same(const Results& a, const Results& b, int thread) {
    EXPECT_EQ(a.logits, b.logits) << "thread " << thread;
    EXPECT_EQ(a.bank_indices, b.bank_indices) << "thread " << thread;
    EXPECT_EQ(a.bank_weights, b.bank_weights) << "thread " << thread;
    EXPECT_EQ(a.router_indices, b.router_indices) << "thread " << thread;
    EXPECT_EQ(a.lora_out, b.lora_out) << "thread " << thread;
    EXPECT_EQ(a.da, b.da) << "thread " << thread;
    EXPECT_EQ(a.loss, b.loss) << "thread " << thread;
}

}  // namespace

TEST(Concurrency, ThreadsSharingAModelAndABankGetTheirOwnResultsAndErrors) {
    TinyModel m("concurrency");
    ASSERT_NE(m.model, nullptr);
    mome_llama_config c{};
    ASSERT_EQ(mome_model_get_config(m.model, &c), MOME_STATUS_OK);
    mome_bank_params bp = bank_defaults();
    bp.n_layers = 1, bp.layers[0] = 0, bp.n_experts = kExperts, bp.key_dim = kKeyDim, bp.top_k = kTopK, bp.rank = kRank;
    mome_bank* bank = nullptr;
    ASSERT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_OK) << mome_last_error();
    // Non-zero B everywhere, so that the bank changes the logits and the gradients of A.
    MOME_TEST_RNG(rng, 11);
    std::normal_distribution<float> normal(0.0f, 0.2f);
    std::vector<float> b(static_cast<size_t>(kRank * c.n_embd));
    for (int64_t e = 0; e < kExperts; ++e) {
        for (float& v : b) v = normal(rng);
        ASSERT_EQ(mome_bank_set_expert(bank, 0, e, nullptr, b.data()), MOME_STATUS_OK);
    }
    std::vector<float> keys(static_cast<size_t>(kExperts * kKeyDim)), experts(static_cast<size_t>(kExperts * kRank * c.n_embd));
    for (float& v : keys) v = normal(rng);
    for (float& v : experts) v = normal(rng);

    std::vector<Results> alone;
    for (int t = 0; t < kThreads; ++t) alone.push_back(work(m.model, bank, keys, experts, c.n_embd, t));

    Barrier barrier(kThreads);
    std::vector<std::string> errors(kThreads), own(kThreads);
    std::vector<Results> together(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int round = 0; round < kRounds; ++round) {
                barrier.wait();
                together[t] = work(m.model, bank, keys, experts, c.n_embd, t);
                // Every thread fails a call of its own, naming its own expert index; the messages
                // are read only after all threads have failed theirs.
                own[t] = "expert " + std::to_string(1000 + t);
                EXPECT_EQ(mome_bank_get_expert(bank, 0, 1000 + t, nullptr, nullptr), MOME_STATUS_OUT_OF_RANGE);
                barrier.wait();
                errors[t] = mome_last_error();
                if (errors[t].find(own[t]) == std::string::npos) break;
            }
        });
    for (std::thread& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) {
        expect_same(alone[t], together[t], t);
        EXPECT_NE(errors[t].find(own[t]), std::string::npos) << "thread " << t << " reads: " << errors[t];
    }
    // The threads' inputs differ, so equal results above are not equal by accident.
    EXPECT_NE(alone[0].logits, alone[1].logits);
    mome_bank_free(bank);
}
