// The native tuner: a batched step's expert gradients against the same facts stepped one by
// one; the optimisers against their formulas written here; checkpoints (resume equals an
// uninterrupted run; damaged state files refused with nothing changed); bad facts refused.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "abi_structs.h"
#include "cpu/shared_pools.h"
#include "memory/optimizer.h"
#include "memory/tuning.h"
#include "model/llama_graph.h"
#include "mome.h"
#include "random_facts.h"
#include "session_logits.h"
#include "test_seed.h"
#include "tiny_model.h"

namespace {

mome_bank* small_bank(const mome_model* model, int64_t experts, int32_t top_k, mome_routing_mode routing, int32_t n_layers = 1) {
    mome_bank_params p = sized<mome_bank_params>();
    EXPECT_EQ(mome_bank_default_params(&p), MOME_STATUS_OK);
    p.n_experts = experts, p.top_k = top_k, p.rank = 2, p.key_dim = 16;
    p.routing = routing;
    p.seed = 9;
    p.n_layers = n_layers, p.layers[0] = 0, p.layers[1] = 1;  // block 0: the backward crosses a whole block
    mome_bank* bank = nullptr;
    EXPECT_EQ(mome_bank_create(model, &p, &bank), MOME_STATUS_OK) << mome_last_error();
    // Non-zero B, so that gradients reach A as well as B.
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    const int64_t n = 2 * 64;
    std::vector<float> a(n), b(n);
    for (int32_t slot = 0; slot < n_layers; ++slot)
        for (int64_t e = 0; e < experts; ++e) {
            EXPECT_EQ(mome_bank_get_expert(bank, slot, e, a.data(), b.data()), MOME_STATUS_OK);
            for (float& x : b) x = normal(rng);
            EXPECT_EQ(mome_bank_set_expert(bank, slot, e, a.data(), b.data()), MOME_STATUS_OK);
        }
    return bank;
}

mome::FactInput input_of(const std::vector<int32_t>& tokens, int32_t answer_start) {
    mome::FactInput in;
    in.tokens = tokens.data();
    in.n = static_cast<int64_t>(tokens.size());
    in.answer_start = answer_start;
    return in;
}

void expect_batch_equals_sum_of_facts(mome_routing_mode routing) {
    TinyModel tiny(routing == MOME_ROUTING_MODE_TOKEN ? "tuner_batch_tok" : "tuner_batch");
    // 24 experts with top 8: the facts' routes share experts, whose gradients must add up.
    mome_bank* bank = small_bank(tiny.model, 24, 8, routing);
    const unsigned seed = mome_test::seed_or(1);
    const Facts facts = random_facts(5, seed);
    mome::ThreadPool& pool = mome::shared_pool(2);
    std::vector<mome::FactInput> inputs;
    std::map<int32_t, std::vector<double>> sum_a, sum_b;
    double loss_sum = 0;
    for (size_t f = 0; f < facts.each.size(); ++f) {
        inputs.push_back(input_of(facts.each[f], facts.answers[f]));
        const mome::FactGradients g = mome::fact_gradients(*bank, inputs.back(), false, pool, 2);
        loss_sum += g.loss;
        const size_t per = g.da.size() / g.experts.size();
        for (size_t j = 0; j < g.experts.size(); ++j) {
            std::vector<double>& a = sum_a[g.experts[j]];
            std::vector<double>& b = sum_b[g.experts[j]];
            a.resize(per, 0.0), b.resize(per, 0.0);
            for (size_t i = 0; i < per; ++i) a[i] += g.da[j * per + i], b[i] += g.db[j * per + i];
        }
    }
    const mome::BatchStep step = mome::batch_step(*bank, inputs, mome::BatchOptions{true, false}, pool, 2);
    ASSERT_EQ(step.experts.size(), sum_a.size()) << "the batch routes to the union of the facts' experts";
    double batch_loss = 0;
    for (const auto& f : step.facts) batch_loss += f.loss;
    EXPECT_NEAR(batch_loss, loss_sum, 1e-4 * loss_sum);
    const size_t per = step.da.size() / step.experts.size();
    double worst = 0, scale = 0;
    for (size_t j = 0; j < step.experts.size(); ++j) {
        ASSERT_TRUE(sum_a.count(step.experts[j])) << "expert " << step.experts[j] << " was routed by no single fact";
        for (size_t i = 0; i < per; ++i) {
            worst = std::max({worst, std::fabs(step.da[j * per + i] - sum_a[step.experts[j]][i]),
                              std::fabs(step.db[j * per + i] - sum_b[step.experts[j]][i])});
            scale = std::max({scale, std::fabs(sum_a[step.experts[j]][i]), std::fabs(sum_b[step.experts[j]][i])});
        }
    }
    ASSERT_GT(scale, 1e-6) << "the gradients are not all zero";
    EXPECT_LT(worst, 1e-4 * scale) << "largest difference " << worst << " of gradients up to " << scale << " (MOME_TEST_SEED=" << seed << ")";
    mome_bank_free(bank);
}

TEST(Tuner, BatchedExpertGradientsAreTheSumOfEachFactsGradients) { expect_batch_equals_sum_of_facts(MOME_ROUTING_MODE_SEQUENCE); }

TEST(Tuner, BatchedGradientsAddUpPerTokenToo) { expect_batch_equals_sum_of_facts(MOME_ROUTING_MODE_TOKEN); }

TEST(Tuner, AdamWFollowsItsFormula) {
    mome::OptimizerParams o;
    o.beta1 = 0.8f, o.beta2 = 0.95f, o.epsilon = 1e-6f, o.weight_decay = 0.01f;
    mome::SparseOptimizer opt(o, 2, 3);
    std::vector<float> p{0.5f, -1.0f, 0.25f, 2.0f, 0.0f, -0.75f};
    std::vector<double> ref(p.begin(), p.end()), m(6, 0.0), v(6, 0.0);
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (int t = 1; t <= 5; ++t) {
        std::vector<float> g(6);
        for (float& x : g) x = normal(rng);
        opt.update(7, p.data(), g.data(), 0.1);
        for (int i = 0; i < 6; ++i) {
            m[i] = 0.8 * m[i] + 0.2 * g[i];
            v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
            const double mh = m[i] / (1 - std::pow(0.8, t)), vh = v[i] / (1 - std::pow(0.95, t));
            ref[i] -= 0.1 * (mh / (std::sqrt(vh) + 1e-6) + 0.01 * ref[i]);
        }
    }
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(p[i], ref[i], 1e-5) << i;
    EXPECT_EQ(opt.states().at(7).steps, 5);
    EXPECT_EQ(opt.state_floats(), 12);
}

TEST(Tuner, AdafactorFollowsItsFormula) {
    mome::OptimizerParams o;
    o.kind = MOME_OPTIMIZER_ADAFACTOR;
    o.beta2 = 0.9f, o.epsilon = 1e-12f;
    mome::SparseOptimizer opt(o, 2, 3);
    EXPECT_EQ(opt.state_floats(), 5) << "rows + columns";
    std::vector<float> p{0.5f, -1.0f, 0.25f, 2.0f, 0.0f, -0.75f};
    std::vector<double> ref(p.begin(), p.end()), R(2, 0.0), C(3, 0.0);
    const std::vector<std::vector<float>> grads{{1, -2, 0.5f, 0.1f, 3, -1}, {0.2f, 0.2f, -4, 1, 1, 1}, {-1, 0, 2, 0.5f, -0.5f, 8}};
    for (size_t t = 1; t <= grads.size(); ++t) {
        const std::vector<float>& g = grads[t - 1];
        opt.update(1, p.data(), g.data(), 0.05);
        for (int i = 0; i < 2; ++i) {
            double s = 0;
            for (int j = 0; j < 3; ++j) s += (double(g[i * 3 + j]) * g[i * 3 + j] + 1e-12) / 3;
            R[i] = 0.9 * R[i] + 0.1 * s;
        }
        for (int j = 0; j < 3; ++j) {
            double s = 0;
            for (int i = 0; i < 2; ++i) s += (double(g[i * 3 + j]) * g[i * 3 + j] + 1e-12) / 2;
            C[j] = 0.9 * C[j] + 0.1 * s;
        }
        const double mean_r = (R[0] + R[1]) / 2, c2 = 1 - std::pow(0.9, double(t));
        std::vector<double> u(6);
        double ss = 0;
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 3; ++j) {
                u[i * 3 + j] = g[i * 3 + j] / std::sqrt(R[i] * C[j] / mean_r / c2 + 1e-12);
                ss += u[i * 3 + j] * u[i * 3 + j];
            }
        const double clip = std::max(1.0, std::sqrt(ss / 6));
        for (int k = 0; k < 6; ++k) ref[k] -= 0.05 * u[k] / clip;
    }
    for (int i = 0; i < 6; ++i) EXPECT_NEAR(p[i], ref[i], 1e-5) << i;
}

// --- the tuner through the ABI ---------------------------------------------------------

mome_tuner_params tuner_defaults() {
    mome_tuner_params p = sized<mome_tuner_params>();
    EXPECT_EQ(mome_tuner_default_params(&p), MOME_STATUS_OK);
    p.batch_size = 4;
    p.n_threads = 1;
    p.learning_rate = 0.05f;
    return p;
}

mome_tuner* make_tuner(mome_bank* bank, const Facts& facts, const mome_tuner_params& p) {
    mome_tuner* t = nullptr;
    EXPECT_EQ(mome_tuner_create(bank, &p, &t), MOME_STATUS_OK) << mome_last_error();
    EXPECT_EQ(mome_tuner_add_facts(t, facts.tokens.data(), facts.lengths.data(), facts.answers.data(),
                                   static_cast<int32_t>(facts.lengths.size())),
              MOME_STATUS_OK)
        << mome_last_error();
    return t;
}

void steps(mome_tuner* t, int n) {
    for (int i = 0; i < n; ++i) {
        mome_tuner_step_result r = sized<mome_tuner_step_result>();
        ASSERT_EQ(mome_tuner_step(t, &r), MOME_STATUS_OK) << mome_last_error();
    }
}

std::vector<float> all_experts(const mome_bank* bank, int64_t n_experts, int32_t n_layers = 1) {
    std::vector<float> out;
    std::vector<float> a(128), b(128);
    for (int32_t slot = 0; slot < n_layers; ++slot)
        for (int64_t e = 0; e < n_experts; ++e) {
            EXPECT_EQ(mome_bank_get_expert(bank, slot, e, a.data(), b.data()), MOME_STATUS_OK);
            out.insert(out.end(), a.begin(), a.end());
            out.insert(out.end(), b.begin(), b.end());
        }
    return out;
}

std::vector<char> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct Checkpointed : ::testing::Test {
    std::string path = std::string(::testing::TempDir()) + "mome_tuner_" + std::to_string(getpid()) + ".mome";
    void TearDown() override {
        for (const char* suffix : {"", ".state", ".state.prev", ".next"}) unlink((path + suffix).c_str());
    }
};

TEST_F(Checkpointed, ResumingGivesTheBankAnUninterruptedRunGives) {
    // Both optimisers; a bank with one memory layer and one with two (its optimiser state keys
    // each layer's experts apart).
    for (const auto [kind, layers] : {std::pair{MOME_OPTIMIZER_ADAMW, 1}, std::pair{MOME_OPTIMIZER_ADAFACTOR, 1},
                                      std::pair{MOME_OPTIMIZER_ADAMW, 2}}) {
        TinyModel tiny("tuner_resume");
        const Facts facts = random_facts(10, 21);
        mome_tuner_params p = tuner_defaults();
        p.optimizer = kind;
        mome_bank* whole = small_bank(tiny.model, 64, 8, MOME_ROUTING_MODE_SEQUENCE, layers);
        mome_tuner* t = make_tuner(whole, facts, p);
        steps(t, 4);  // one epoch (3 steps) and a step into the next
        ASSERT_EQ(mome_tuner_checkpoint(t, path.c_str(), 12.5), MOME_STATUS_OK) << mome_last_error();
        steps(t, 5);
        const std::vector<float> expected = all_experts(whole, 64, layers);
        mome_tuner_free(t);

        mome_bank* loaded = nullptr;
        ASSERT_EQ(mome_bank_load(tiny.model, path.c_str(), &loaded), MOME_STATUS_OK) << mome_last_error();
        mome_tuner* resumed = make_tuner(loaded, facts, p);
        mome_resume_outcome outcome{};
        double elapsed = 0;
        ASSERT_EQ(mome_tuner_resume(resumed, path.c_str(), &outcome, &elapsed), MOME_STATUS_OK) << mome_last_error();
        EXPECT_EQ(outcome, MOME_RESUME_OUTCOME_RESUMED);
        EXPECT_DOUBLE_EQ(elapsed, 12.5);
        mome_tuner_info info{};
        ASSERT_EQ(mome_tuner_get_info(resumed, &info), MOME_STATUS_OK);
        EXPECT_EQ(info.epoch, 1);
        EXPECT_EQ(info.position, 4);
        steps(resumed, 5);
        EXPECT_EQ(all_experts(loaded, 64, layers), expected) << "optimizer " << kind << ", " << layers << " layer(s)";
        mome_tuner_free(resumed);
        mome_bank_free(loaded);
        mome_bank_free(whole);
        TearDown();
    }
}

TEST_F(Checkpointed, ADamagedStateIsRefusedByNameAndChangesNothing) {
    TinyModel tiny("tuner_damaged");
    const Facts facts = random_facts(6, 4);
    const mome_tuner_params p = tuner_defaults();
    mome_bank* bank = small_bank(tiny.model, 64, 8, MOME_ROUTING_MODE_SEQUENCE);
    mome_tuner* t = make_tuner(bank, facts, p);
    steps(t, 1);
    ASSERT_EQ(mome_tuner_checkpoint(t, path.c_str(), 1.0), MOME_STATUS_OK) << mome_last_error();
    mome_tuner_free(t);
    const std::string state = path + ".state";
    const std::vector<char> good = read_bytes(state);
    ASSERT_GT(good.size(), 120u);

    const auto refused = [&](const std::vector<char>& bytes, const char* expect) {
        write_bytes(state, bytes);
        mome_tuner* fresh = make_tuner(bank, facts, p);
        mome_resume_outcome outcome = MOME_RESUME_OUTCOME_RESUMED;
        double elapsed = -1;
        EXPECT_EQ(mome_tuner_resume(fresh, path.c_str(), &outcome, &elapsed), MOME_STATUS_FORMAT_ERROR);
        const std::string message = mome_last_error();
        EXPECT_NE(message.find(state), std::string::npos) << message;
        EXPECT_NE(message.find(expect), std::string::npos) << message;
        mome_tuner_info info{};
        EXPECT_EQ(mome_tuner_get_info(fresh, &info), MOME_STATUS_OK);
        EXPECT_EQ(info.touched_experts, 0) << "nothing restored";
        EXPECT_EQ(elapsed, -1);
        mome_tuner_free(fresh);
    };
    std::vector<char> flipped = good;
    flipped[good.size() / 2] ^= 0x40;
    refused(flipped, "checksum");
    refused(std::vector<char>(good.begin(), good.begin() + 20), "truncated");
    std::vector<char> magic = good;
    magic[0] = 'X';
    refused(magic, "MOMETUNR");
    // The first section's count made absurd: refused by the bytes left, before any allocation.
    std::vector<char> forged = good;
    const size_t header = 8 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 4 + 4 + 8 + 4 + 4 + 5 * 8;
    const uint64_t huge = ~0ull / 2;
    std::memcpy(forged.data() + header, &huge, sizeof huge);
    refused(forged, "do not fit");

    // Other facts: said, nothing restored.
    write_bytes(state, good);
    const Facts other = random_facts(6, 5);
    mome_tuner* fresh = make_tuner(bank, other, p);
    mome_resume_outcome outcome{};
    double elapsed = 0;
    EXPECT_EQ(mome_tuner_resume(fresh, path.c_str(), &outcome, &elapsed), MOME_STATUS_OK);
    EXPECT_EQ(outcome, MOME_RESUME_OUTCOME_OTHER_FACTS);
    mome_tuner_free(fresh);
    mome_bank_free(bank);
}

TEST(TunerBadInput, FactsThatCannotBeTunedAreRefusedAndNoneIsAdded) {
    TinyModel tiny("tuner_bad");
    mome_bank* bank = small_bank(tiny.model, 64, 8, MOME_ROUTING_MODE_SEQUENCE);
    const mome_tuner_params p = tuner_defaults();
    mome_tuner* t = nullptr;
    ASSERT_EQ(mome_tuner_create(bank, &p, &t), MOME_STATUS_OK);
    const std::vector<int32_t> tokens(600, 7);
    const int32_t ok_len[2] = {4, 600}, ok_ans[2] = {2, 300};
    EXPECT_EQ(mome_tuner_add_facts(t, tokens.data(), ok_len, ok_ans, 2), MOME_STATUS_OUT_OF_RANGE);
    EXPECT_NE(std::string(mome_last_error()).find("fact 2 is 600 tokens"), std::string::npos) << mome_last_error();
    const int32_t empty_len[1] = {4}, empty_ans[1] = {4};
    EXPECT_EQ(mome_tuner_add_facts(t, tokens.data(), empty_len, empty_ans, 1), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("at least one answer token"), std::string::npos) << mome_last_error();
    std::vector<int32_t> bad_token{1, 2, 9999};
    const int32_t len3[1] = {3}, ans3[1] = {1};
    EXPECT_EQ(mome_tuner_add_facts(t, bad_token.data(), len3, ans3, 1), MOME_STATUS_OUT_OF_RANGE);
    mome_tuner_info info{};
    ASSERT_EQ(mome_tuner_get_info(t, &info), MOME_STATUS_OK);
    EXPECT_EQ(info.n_facts, 0);
    mome_tuner_step_result r = sized<mome_tuner_step_result>();
    EXPECT_EQ(mome_tuner_step(t, &r), MOME_STATUS_INVALID_ARGUMENT) << "no facts";
    mome_tuner_free(t);

    // A batch whose activations exceed the limit: named, before any update.
    mome_tuner_params tight = tuner_defaults();
    tight.max_step_bytes = 4096;
    mome_tuner* limited = nullptr;
    ASSERT_EQ(mome_tuner_create(bank, &tight, &limited), MOME_STATUS_OK);
    const Facts some = random_facts(4, 3);
    ASSERT_EQ(mome_tuner_add_facts(limited, some.tokens.data(), some.lengths.data(), some.answers.data(), 4), MOME_STATUS_OK);
    std::vector<float> a(128), b(128), a2(128), b2(128);
    ASSERT_EQ(mome_bank_get_expert(bank, 0, 5, a.data(), b.data()), MOME_STATUS_OK);
    EXPECT_EQ(mome_tuner_step(limited, &r), MOME_STATUS_OUT_OF_MEMORY);
    EXPECT_NE(std::string(mome_last_error()).find("smaller batch size"), std::string::npos) << mome_last_error();
    ASSERT_EQ(mome_tuner_get_info(limited, &info), MOME_STATUS_OK);
    EXPECT_EQ(info.updates, 0);
    EXPECT_EQ(info.position, 0);
    ASSERT_EQ(mome_bank_get_expert(bank, 0, 5, a2.data(), b2.data()), MOME_STATUS_OK);
    EXPECT_EQ(a, a2);
    EXPECT_EQ(b, b2);
    mome_tuner_free(limited);

    // Versioned structs: a size the library cannot read is refused, and a step refused for its
    // result's size has not run.
    mome_tuner_params unsized = tuner_defaults();
    unsized.struct_size = 4;
    mome_tuner* none = nullptr;
    EXPECT_EQ(mome_tuner_create(bank, &unsized, &none), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("mome_tuner_params.struct_size"), std::string::npos) << mome_last_error();
    EXPECT_EQ(none, nullptr);
    mome_tuner* sized_tuner = nullptr;
    ASSERT_EQ(mome_tuner_create(bank, &p, &sized_tuner), MOME_STATUS_OK);
    ASSERT_EQ(mome_tuner_add_facts(sized_tuner, some.tokens.data(), some.lengths.data(), some.answers.data(), 4), MOME_STATUS_OK);
    mome_tuner_step_result newer{};
    newer.struct_size = sizeof newer + 8;
    EXPECT_EQ(mome_tuner_step(sized_tuner, &newer), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("newer mome.h"), std::string::npos) << mome_last_error();
    ASSERT_EQ(mome_tuner_get_info(sized_tuner, &info), MOME_STATUS_OK);
    EXPECT_EQ(info.position, 0);
    mome_tuner_free(sized_tuner);

    mome_tuner_params bad = tuner_defaults();
    bad.batch_size = 0;
    EXPECT_EQ(mome_tuner_create(bank, &bad, &t), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("batch_size"), std::string::npos);
    bad = tuner_defaults();
    reinterpret_cast<int32_t&>(bad.optimizer) = 7;
    EXPECT_EQ(mome_tuner_create(bank, &bad, &t), MOME_STATUS_INVALID_ARGUMENT);
    mome_bank_free(bank);
}

TEST(Tuner, TuningToExactRecallInBatches) {
    TinyModel tiny("tuner_recall");
    const Facts facts = random_facts(24, 31);
    mome_bank* bank = small_bank(tiny.model, 1024, 16, MOME_ROUTING_MODE_SEQUENCE);
    mome_tuner_params p = tuner_defaults();
    p.batch_size = 8;
    p.learning_rate = 0.1f;
    p.epochs = 60;
    mome_tuner* t = make_tuner(bank, facts, p);
    int32_t exact = 0, epochs = 0;
    while (exact < 24 && epochs < 60) {
        mome_tuner_step_result r = sized<mome_tuner_step_result>();
        ASSERT_EQ(mome_tuner_step(t, &r), MOME_STATUS_OK) << mome_last_error();
        if (r.epoch_done) exact = r.epoch_exact, ++epochs;
    }
    int32_t evaluated = 0;
    std::vector<uint8_t> flags(24);
    ASSERT_EQ(mome_tuner_evaluate(t, flags.data(), &evaluated), MOME_STATUS_OK);
    EXPECT_EQ(evaluated, 24) << "after " << epochs << " epochs";

    // Per-fact early stop: in a batch, exact facts add nothing; the gradient is the other fact's.
    mome::ThreadPool& pool = mome::shared_pool(1);
    const Facts unseen = random_facts(1, 99);
    const std::vector<mome::FactInput> exact_one{input_of(facts.each[0], facts.answers[0])};
    const mome::BatchStep skipped = mome::batch_step(*bank, exact_one, mome::BatchOptions{true, true}, pool, 1);
    ASSERT_TRUE(skipped.facts[0].exact());
    EXPECT_TRUE(skipped.experts.empty() && skipped.da.empty()) << "an exact fact alone runs no backward";
    EXPECT_FALSE(mome::batch_step(*bank, exact_one, mome::BatchOptions{true, false}, pool, 1).da.empty());
    const mome::FactGradients alone = mome::fact_gradients(*bank, input_of(unseen.each[0], unseen.answers[0]), false, pool, 1);
    ASSERT_LT(alone.n_correct, alone.n_answer);
    const mome::BatchStep mixed = mome::batch_step(*bank, {exact_one[0], input_of(unseen.each[0], unseen.answers[0])},
                                                   mome::BatchOptions{true, true}, pool, 1);
    std::map<int32_t, size_t> slot;
    for (size_t j = 0; j < mixed.experts.size(); ++j) slot[mixed.experts[j]] = j;
    const size_t per = alone.da.size() / alone.experts.size();
    double worst = 0, scale = 0;
    for (size_t j = 0; j < alone.experts.size(); ++j)
        for (size_t i = 0; i < per; ++i) {
            worst = std::max(worst, static_cast<double>(std::fabs(mixed.da[slot.at(alone.experts[j]) * per + i] - alone.da[j * per + i])));
            scale = std::max(scale, static_cast<double>(std::fabs(alone.da[j * per + i])));
        }
    for (size_t j = 0; j < mixed.experts.size(); ++j)
        if (std::find(alone.experts.begin(), alone.experts.end(), mixed.experts[j]) == alone.experts.end())
            for (size_t i = 0; i < per; ++i) EXPECT_EQ(mixed.da[j * per + i], 0.0f) << "the exact fact's own experts get nothing";
    ASSERT_GT(scale, 0);
    EXPECT_LT(worst, 1e-4 * scale);

    // With more than half the batch still learning, the whole batch runs its backward (the
    // exact fact carrying zeros): the gradient is still the learning facts' sum.
    const Facts two = random_facts(2, 98);
    std::vector<mome::FactInput> three{exact_one[0]};
    std::map<int32_t, std::vector<double>> sum;
    for (int i = 0; i < 2; ++i) {
        three.push_back(input_of(two.each[static_cast<size_t>(i)], two.answers[static_cast<size_t>(i)]));
        const mome::FactGradients g = mome::fact_gradients(*bank, three.back(), false, pool, 1);
        ASSERT_LT(g.n_correct, g.n_answer);
        for (size_t j = 0; j < g.experts.size(); ++j) {
            std::vector<double>& into = sum[g.experts[j]];
            into.resize(per, 0.0);
            for (size_t k = 0; k < per; ++k) into[k] += g.da[j * per + k];
        }
    }
    const mome::BatchStep whole = mome::batch_step(*bank, three, mome::BatchOptions{true, true}, pool, 1);
    double worst3 = 0, scale3 = 0;
    for (size_t j = 0; j < whole.experts.size(); ++j) {
        const auto at = sum.find(whole.experts[j]);
        for (size_t k = 0; k < per; ++k) {
            const double want = at == sum.end() ? 0.0 : at->second[k];
            worst3 = std::max(worst3, std::fabs(whole.da[j * per + k] - want));
            scale3 = std::max(scale3, std::fabs(want));
        }
    }
    ASSERT_GT(scale3, 0);
    EXPECT_LT(worst3, 1e-4 * scale3);
    mome_tuner_free(t);
    mome_bank_free(bank);
}

}  // namespace

// "Exact" is the greedy answer with a margin: a row counts as correct when the target is the
// session's argmax, and as sure when its probability is at least sigmoid(kRecallMargin), so
// that its logit leads every other by the margin. Both counts of the tuner's forward are
// checked against a user's session logits (softmax in double here), epoch by epoch while the
// facts are learnt, so that rows of every kind (wrong, right but unsure, sure) are seen.
TEST(Tuner, ExactMeansTheGreedyAnswerLeadsByTheRecallMargin) {
    EXPECT_NEAR(mome::kRecallMarginLoss, std::log1p(std::exp(-mome::kRecallMargin)), 1e-10);
    TinyModel tiny("tuner_margin");
    const unsigned seed = mome_test::seed_or(7);
    const Facts facts = random_facts(16, seed);
    mome_bank* bank = small_bank(tiny.model, 512, 16, MOME_ROUTING_MODE_SEQUENCE);
    mome_tuner_params p = tuner_defaults();
    p.batch_size = 4;
    p.learning_rate = 0.05f;
    p.epochs = 80;
    mome_tuner* t = make_tuner(bank, facts, p);
    std::vector<mome::FactInput> inputs;
    for (size_t f = 0; f < facts.each.size(); ++f) inputs.push_back(input_of(facts.each[f], facts.answers[f]));
    const double sure_p = 1.0 / (1.0 + std::exp(-mome::kRecallMargin));
    const int64_t vocab = 512;
    mome::ThreadPool& pool = mome::shared_pool(1);
    int wrong = 0, unsure = 0, sure = 0, exact_facts = 0, epochs = 0;
    for (bool all_exact = false; !all_exact && epochs < 80; ++epochs) {
        const mome::BatchStep step = mome::batch_step(*bank, inputs, mome::BatchOptions{false, false}, pool, 1);
        all_exact = true;
        for (size_t f = 0; f < facts.each.size(); ++f) {
            const std::vector<float> logits = session_logits(tiny.model, bank, facts.each[f], facts.answers[f], vocab);
            int n_correct = 0, n_sure = 0;
            bool borderline = false;
            for (size_t i = static_cast<size_t>(facts.answers[f]); i < facts.each[f].size(); ++i) {
                const float* row = logits.data() + (i - 1) * vocab;
                const int32_t target = facts.each[f][i];
                double max = row[0], second = -INFINITY, z = 0;
                for (int64_t v = 1; v < vocab; ++v) {
                    if (row[v] > max) second = max, max = row[v];
                    else second = std::max(second, static_cast<double>(row[v]));
                }
                for (int64_t v = 0; v < vocab; ++v) z += std::exp(row[v] - max);
                const double p_target = std::exp(row[target] - max) / z;
                const bool correct = row[target] == max;
                borderline |= max - second < 1e-4 || std::fabs(p_target - sure_p) < 1e-4;
                n_correct += correct;
                if (correct && p_target >= sure_p) {
                    ++n_sure;
                    EXPECT_GE(max - second, mome::kRecallMargin) << "a sure row leads by the margin";
                }
            }
            const int n_answer = static_cast<int>(facts.each[f].size()) - facts.answers[f];
            ASSERT_EQ(step.facts[f].n_answer, n_answer);
            if (!borderline) {
                EXPECT_EQ(step.facts[f].n_correct, n_correct) << "fact " << f << ", epoch " << epochs << " (MOME_TEST_SEED=" << seed << ")";
                EXPECT_EQ(step.facts[f].n_sure, n_sure) << "fact " << f << ", epoch " << epochs << " (MOME_TEST_SEED=" << seed << ")";
                EXPECT_EQ(step.facts[f].exact(), n_sure == n_answer);
            }
            wrong += n_answer - n_correct, unsure += n_correct - n_sure, sure += n_sure;
            exact_facts += step.facts[f].exact();
            all_exact &= step.facts[f].exact();
        }
        for (bool epoch_done = false; !all_exact && !epoch_done;) {
            mome_tuner_step_result r = sized<mome_tuner_step_result>();
            ASSERT_EQ(mome_tuner_step(t, &r), MOME_STATUS_OK) << mome_last_error();
            epoch_done = r.epoch_done;
        }
    }
    std::printf("recall margin: %d epochs; rows wrong %d, right but unsure %d, sure %d; %d exact facts over the epochs\n", epochs, wrong,
                unsure, sure, exact_facts);
    EXPECT_GT(wrong, 0);
    EXPECT_GT(unsure, 0) << "rows that are the argmax but lead by less than the margin";
    EXPECT_GT(sure, 0);
    EXPECT_GT(exact_facts, 0);
    mome_tuner_free(t);
    mome_bank_free(bank);
}
