// The tuning gradient against finite differences of the loss computed by the inference path
// (a session with the bank: an independent forward), on a tiny model whose memory layer is
// below its last layer, so the backward crosses a whole attention + MLP layer.
#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "mome.h"

namespace {

struct Fixture {
    mome_model* model = nullptr;
    mome_bank* bank = nullptr;
    std::string path;
    ~Fixture() {
        mome_bank_free(bank);
        mome_model_free(model);
        if (!path.empty()) unlink(path.c_str());
    }
};

double cross_entropy(const float* logits, int64_t n, int32_t target) {
    double m = -INFINITY, z = 0;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(logits[i]));
    for (int64_t i = 0; i < n; ++i) z += std::exp(logits[i] - m);
    return -(logits[target] - m - std::log(z));
}

// The fact's mean answer loss as a user's session sees it: the question first (routing
// from it), then the answer.
double session_loss(const mome_model* model, const mome_bank* bank, const std::vector<int32_t>& tokens, int32_t answer_start) {
    mome_session_params sp = mome_session_default_params();
    sp.n_ctx = 64;
    sp.n_threads = 1;
    sp.bank = bank;
    mome_session* s = nullptr;
    EXPECT_EQ(mome_session_create(model, sp, &s), MOME_STATUS_OK) << mome_last_error();
    const int64_t vocab = 512, n = static_cast<int64_t>(tokens.size());
    std::vector<float> logits(static_cast<size_t>(n * vocab));
    std::vector<int32_t> pos(static_cast<size_t>(n)), seq(static_cast<size_t>(n), 0);
    std::vector<uint8_t> want(static_cast<size_t>(n), 1);
    for (int64_t t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    mome_batch question{answer_start, tokens.data(), pos.data(), seq.data(), want.data()};
    EXPECT_EQ(mome_session_decode(s, &question, logits.data(), logits.size()), MOME_STATUS_OK) << mome_last_error();
    mome_batch answer{static_cast<int32_t>(n - answer_start), tokens.data() + answer_start, pos.data() + answer_start,
                      seq.data(), want.data()};
    EXPECT_EQ(mome_session_decode(s, &answer, logits.data() + answer_start * vocab, logits.size() - answer_start * vocab),
              MOME_STATUS_OK);
    mome_session_free(s);
    double loss = 0;
    for (int64_t t = answer_start - 1; t < n - 1; ++t) loss += cross_entropy(logits.data() + t * vocab, vocab, tokens[static_cast<size_t>(t + 1)]);
    return loss / static_cast<double>(n - answer_start);
}

}  // namespace

TEST(Tuning, ExpertGradientsMatchFiniteDifferencesOfTheSessionLoss) {
    Fixture f;
    f.path = std::string(::testing::TempDir()) + "mome_tuning_" + std::to_string(getpid()) + ".gguf";
    mome_synthetic_params sp;
    ASSERT_EQ(mome_synthetic_preset("tiny", &sp), MOME_STATUS_OK);
    sp.init_std = 0.25f;
    ASSERT_EQ(mome_synthetic_write(&sp, f.path.c_str()), MOME_STATUS_OK) << mome_last_error();
    ASSERT_EQ(mome_model_open(f.path.c_str(), mome_model_default_params(), &f.model), MOME_STATUS_OK);
    mome_bank_params bp = mome_bank_default_params();
    bp.n_layers = 1;
    bp.layers[0] = 0;  // below the last layer: the gradient crosses layer 1
    bp.n_experts = 64;
    bp.key_dim = 8;
    bp.top_k = 4;
    bp.rank = 2;
    ASSERT_EQ(mome_bank_create(f.model, bp, &f.bank), MOME_STATUS_OK) << mome_last_error();
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    const int64_t per_expert = 2 * 64;
    std::vector<float> values(static_cast<size_t>(per_expert));
    for (int64_t e = 0; e < 64; ++e) {
        for (float& v : values) v = normal(rng);
        ASSERT_EQ(mome_bank_set_expert(f.bank, 0, e, nullptr, values.data()), MOME_STATUS_OK);
    }

    const std::vector<int32_t> tokens = {1, 40, 41, 42, 43, 44, 60, 61, 62};
    const int32_t answer_start = 6;
    std::vector<int32_t> idx(4);
    std::vector<float> w(4), da(static_cast<size_t>(4 * per_expert)), db(da.size());
    mome_fact_result result{};
    ASSERT_EQ(mome_bank_fact_gradients(f.bank, tokens.data(), static_cast<int32_t>(tokens.size()), answer_start, idx.data(),
                                       w.data(), da.data(), db.data(), &result, 1),
              MOME_STATUS_OK)
        << mome_last_error();
    EXPECT_EQ(result.n_answer_tokens, 3);
    const double base = session_loss(f.model, f.bank, tokens, answer_start);
    EXPECT_NEAR(result.loss, base, 1e-4 * std::max(1.0, base));

    // Finite differences on a spread of elements of A and B of every routed expert.
    const double h = 1e-2;
    for (int j = 0; j < 4; ++j)
        for (int64_t i : {0L, 17L, 63L, 64L, 100L, 127L})
            for (bool is_a : {true, false}) {
                std::vector<float> a(static_cast<size_t>(per_expert)), b(a.size());
                ASSERT_EQ(mome_bank_get_expert(f.bank, 0, idx[static_cast<size_t>(j)], a.data(), b.data()), MOME_STATUS_OK);
                std::vector<float>& target = is_a ? a : b;
                const float keep = target[static_cast<size_t>(i)];
                target[static_cast<size_t>(i)] = static_cast<float>(keep + h);
                mome_bank_set_expert(f.bank, 0, idx[static_cast<size_t>(j)], a.data(), b.data());
                const double up = session_loss(f.model, f.bank, tokens, answer_start);
                target[static_cast<size_t>(i)] = static_cast<float>(keep - h);
                mome_bank_set_expert(f.bank, 0, idx[static_cast<size_t>(j)], a.data(), b.data());
                const double down = session_loss(f.model, f.bank, tokens, answer_start);
                target[static_cast<size_t>(i)] = keep;
                mome_bank_set_expert(f.bank, 0, idx[static_cast<size_t>(j)], a.data(), b.data());
                const double numeric = (up - down) / (2 * h);
                const double analytic = (is_a ? da : db)[static_cast<size_t>(j * per_expert + i)];
                EXPECT_NEAR(analytic, numeric, 2e-3 + 0.03 * std::fabs(numeric))
                    << (is_a ? "dA" : "dB") << " expert " << idx[static_cast<size_t>(j)] << " element " << i;
            }
}
