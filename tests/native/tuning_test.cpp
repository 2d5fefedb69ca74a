// The tuning gradient against finite differences of the loss computed by the inference path
// (a session with the bank: an independent forward), on a tiny model whose memory layer is
// below its last layer, so the backward crosses a whole attention + MLP layer.
#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "abi_c_caller.h"
#include "abi_structs.h"
#include "mome.h"
#include "session_logits.h"
#include "test_seed.h"

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
    const int64_t vocab = 512, n = static_cast<int64_t>(tokens.size());
    const std::vector<float> logits = session_logits(model, bank, tokens, answer_start, vocab);
    double loss = 0;
    for (int64_t t = answer_start - 1; t < n - 1; ++t) loss += cross_entropy(logits.data() + t * vocab, vocab, tokens[static_cast<size_t>(t + 1)]);
    return loss / static_cast<double>(n - answer_start);
}

constexpr int64_t kExperts = 64, kKeyDim = 8, kTopK = 4, kRank = 2, kEmbd = 64, kPerExpert = kRank * kEmbd;

// A tiny model whose memory layer sits below its last layer, so the backward crosses a whole
// attention + MLP layer, and a bank with random B (a fresh bank's B = 0 would hide A's and
// the router's gradients).
void make_fixture(Fixture& f, mome_router_kind router) {
    f.path = std::string(::testing::TempDir()) + "mome_tuning_" + std::to_string(getpid()) + ".gguf";
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    ASSERT_EQ(mome_synthetic_preset("tiny", &sp), MOME_STATUS_OK);
    sp.init_std = 0.25f;
    ASSERT_EQ(mome_synthetic_write(&sp, f.path.c_str()), MOME_STATUS_OK) << mome_last_error();
    ASSERT_EQ(mome_model_open(f.path.c_str(), nullptr, &f.model), MOME_STATUS_OK);
    mome_bank_params bp = bank_defaults();
    bp.n_layers = 1;
    bp.layers[0] = 0;
    bp.n_experts = kExperts;
    bp.key_dim = kKeyDim;
    bp.top_k = kTopK;
    bp.rank = kRank;
    bp.router = router;
    ASSERT_EQ(mome_bank_create(f.model, &bp, &f.bank), MOME_STATUS_OK) << mome_last_error();
    std::mt19937 rng(mome_test::seed_or(3));
    std::normal_distribution<float> normal(0.0f, 0.3f);
    std::vector<float> values(static_cast<size_t>(kPerExpert));
    for (int64_t e = 0; e < kExperts; ++e) {
        for (float& v : values) v = normal(rng);
        ASSERT_EQ(mome_bank_set_expert(f.bank, 0, e, nullptr, values.data()), MOME_STATUS_OK);
    }
}

// Twice the absolute tolerances of the comparisons below: a zeroed analytic gradient fails
// every element whose finite difference exceeds them, so each test requires some such.
constexpr double kSignificantExpertGradient = 4e-3, kSignificantRouterGradient = 4e-4;

const std::vector<int32_t> kTokens = {1, 40, 41, 42, 43, 44, 60, 61, 62};
constexpr int32_t kAnswerStart = 6;

struct Backward {
    std::vector<int32_t> idx = std::vector<int32_t>(kTopK);
    std::vector<float> w = std::vector<float>(kTopK), da = std::vector<float>(kTopK * kPerExpert), db = da;
    std::vector<float> dwq = std::vector<float>(kKeyDim * kEmbd), dkeys = std::vector<float>(kTopK * kKeyDim);
    mome_fact_result result{};
};

Backward backward(const mome_bank* bank, bool router) {
    Backward b;
    mome_fact_desc fact{sizeof(mome_fact_desc), kTokens.data(), static_cast<int32_t>(kTokens.size()), kAnswerStart, nullptr, nullptr, nullptr, nullptr};
    mome_fact_grads out{sizeof(mome_fact_grads), b.idx.data(), b.w.data(), b.da.data(), b.db.data(), router ? b.dwq.data() : nullptr,
                        router ? b.dkeys.data() : nullptr, {}};
    EXPECT_EQ(mome_bank_fact_backward(bank, &fact, &out, 1), MOME_STATUS_OK) << mome_last_error();
    b.result = out.result;
    return b;
}

// Central difference of the session loss in one parameter, set through `set`; nullopt when
// the step changes the route (top-k choice has no gradient).
template <class Set>
bool central_difference(const Fixture& f, const std::vector<int32_t>& route, float keep, double h, Set set, double& out) {
    set(static_cast<float>(keep + h));
    const double up = session_loss(f.model, f.bank, kTokens, kAnswerStart);
    const bool same_up = backward(f.bank, false).idx == route;
    set(static_cast<float>(keep - h));
    const double down = session_loss(f.model, f.bank, kTokens, kAnswerStart);
    const bool same_down = backward(f.bank, false).idx == route;
    set(keep);
    out = (up - down) / (2 * h);
    return same_up && same_down;
}

}  // namespace

TEST(Tuning, ExpertGradientsMatchFiniteDifferencesOfTheSessionLoss) {
    Fixture f;
    make_fixture(f, MOME_ROUTER_KIND_FLAT);
    const Backward g = backward(f.bank, false);
    EXPECT_EQ(g.result.n_answer_tokens, 3);
    const double base = session_loss(f.model, f.bank, kTokens, kAnswerStart);
    EXPECT_NEAR(g.result.loss, base, 1e-4 * std::max(1.0, base));

    // Finite differences on a spread of elements of A and B of every routed expert.
    int significant = 0, significant_a = 0, compared = 0;
    double db_error = 0, db_norm = 0;
    for (int j = 0; j < kTopK; ++j)
        for (int64_t i : {0L, 17L, 63L, 64L, 100L, 127L})
            for (bool is_a : {true, false}) {
                const int32_t e = g.idx[static_cast<size_t>(j)];
                std::vector<float> a(static_cast<size_t>(kPerExpert)), b(a.size());
                ASSERT_EQ(mome_bank_get_expert(f.bank, 0, e, a.data(), b.data()), MOME_STATUS_OK);
                std::vector<float>& target = is_a ? a : b;
                double numeric = 0;
                central_difference(f, g.idx, target[static_cast<size_t>(i)], 1e-2, [&](float v) {
                    target[static_cast<size_t>(i)] = v;
                    mome_bank_set_expert(f.bank, 0, e, a.data(), b.data());
                }, numeric);
                const double analytic = (is_a ? g.da : g.db)[static_cast<size_t>(j * kPerExpert + i)];
                EXPECT_NEAR(analytic, numeric, 2e-3 + 0.03 * std::fabs(numeric)) << (is_a ? "dA" : "dB") << " expert " << e << " element " << i;
                ++compared;
                significant += std::fabs(numeric) > kSignificantExpertGradient;
                significant_a += is_a && std::fabs(numeric) > kSignificantExpertGradient;
                if (!is_a) db_error += (analytic - numeric) * (analytic - numeric), db_norm += numeric * numeric;
            }
    std::printf("expert gradients: %d of %d finite differences above %g (dA %d)\n", significant, compared, kSignificantExpertGradient, significant_a);
    EXPECT_GE(significant, 8) << "too few gradients exceed the absolute tolerance: a zeroed gradient would pass";
    EXPECT_GE(significant_a, 3) << "too few of dA exceed the absolute tolerance: a zeroed dA would pass";
    // dB is below the absolute tolerance almost everywhere: compared by norm instead.
    std::printf("dB: |analytic - numeric| %g, |numeric| %g\n", std::sqrt(db_error), std::sqrt(db_norm));
    EXPECT_GT(std::sqrt(db_norm), 1e-5) << "dB vanishes: the check would prove nothing";
    EXPECT_LT(std::sqrt(db_error), 0.1 * std::sqrt(db_norm)) << "dB by norm";
}

// Phase 0: W_q and the keys, through the softmax weights of the route, for both routers.
class RouterGradients : public ::testing::TestWithParam<mome_router_kind> {};

TEST_P(RouterGradients, MatchFiniteDifferencesOfTheSessionLoss) {
    Fixture f;
    const mome_router_kind kind = GetParam();
    make_fixture(f, kind);
    const Backward g = backward(f.bank, true);
    const Backward plain = backward(f.bank, false);
    EXPECT_EQ(g.da, plain.da);  // asking for router gradients changes nothing else
    double largest = 0;
    for (float v : g.dwq) largest = std::max(largest, std::fabs(static_cast<double>(v)));
    ASSERT_GT(largest, 1e-4) << "W_q's gradient vanishes: the check would prove nothing";

    const double h = 1e-2;
    int checked = 0, significant = 0, significant_wq = 0;
    double wq_error = 0, wq_norm = 0;
    std::vector<float> wq(static_cast<size_t>(kKeyDim * kEmbd));
    ASSERT_EQ(mome_bank_get_wq(f.bank, 0, wq.data()), MOME_STATUS_OK);
    for (int64_t i : {0L, 9L, 70L, 131L, 200L, 317L, 400L, 511L}) {
        double numeric = 0;
        if (!central_difference(f, g.idx, wq[static_cast<size_t>(i)], h, [&](float v) {
                wq[static_cast<size_t>(i)] = v;
                ASSERT_EQ(mome_bank_set_wq(f.bank, 0, wq.data()), MOME_STATUS_OK);
            }, numeric))
            continue;
        ++checked;
        significant += std::fabs(numeric) > kSignificantRouterGradient;
        significant_wq += std::fabs(numeric) > kSignificantRouterGradient;
        const double analytic = g.dwq[static_cast<size_t>(i)];
        wq_error += (analytic - numeric) * (analytic - numeric), wq_norm += numeric * numeric;
        EXPECT_NEAR(g.dwq[static_cast<size_t>(i)], numeric, 2e-4 + 0.03 * std::fabs(numeric)) << "dW_q element " << i;
    }

    // Keys: a flat router's row j is expert idx[j]'s key; a product router's halves are
    // sub-key rows idx / n_sub and n_sub + idx % n_sub, shared entries adding up.
    const int64_t n_sub = 8, half = kKeyDim / 2;
    for (int j = 0; j < kTopK; ++j)
        for (int64_t i : {0L, 3L, 5L, 7L}) {
            const int32_t e = g.idx[static_cast<size_t>(j)];
            int64_t row = e, element = i, len = kKeyDim;
            if (kind == MOME_ROUTER_KIND_PRODUCT) row = i < half ? e / n_sub : n_sub + e % n_sub, element = i % half, len = half;
            double analytic = 0;
            for (int m = 0; m < kTopK; ++m) {
                const int32_t other = g.idx[static_cast<size_t>(m)];
                const bool shares = kind == MOME_ROUTER_KIND_FLAT ? other == e
                                    : i < half                    ? other / n_sub == e / n_sub
                                                                  : other % n_sub == e % n_sub;
                if (shares) analytic += g.dkeys[static_cast<size_t>(m * kKeyDim + i)];
            }
            std::vector<float> key(static_cast<size_t>(len));
            ASSERT_EQ(mome_bank_get_key_rows(f.bank, 0, row, 1, key.data()), MOME_STATUS_OK);
            double numeric = 0;
            if (!central_difference(f, g.idx, key[static_cast<size_t>(element)], h, [&](float v) {
                    key[static_cast<size_t>(element)] = v;
                    ASSERT_EQ(mome_bank_set_key_rows(f.bank, 0, row, 1, key.data()), MOME_STATUS_OK);
                }, numeric))
                continue;
            ++checked;
            significant += std::fabs(numeric) > kSignificantRouterGradient;
            EXPECT_NEAR(analytic, numeric, 2e-4 + 0.03 * std::fabs(numeric)) << "dkey of route entry " << j << " element " << i;
        }
    EXPECT_GE(checked, 20) << "too many steps changed the route";
    std::printf("router gradients: %d of %d finite differences above %g (dW_q %d)\n", significant, checked, kSignificantRouterGradient, significant_wq);
    std::printf("dW_q: |analytic - numeric| %g, |numeric| %g\n", std::sqrt(wq_error), std::sqrt(wq_norm));
    EXPECT_GT(std::sqrt(wq_norm), 1e-5) << "dW_q vanishes: the check would prove nothing";
    EXPECT_LT(std::sqrt(wq_error), 0.1 * std::sqrt(wq_norm)) << "dW_q by norm (most elements are below the absolute tolerance)";
    EXPECT_GE(significant - significant_wq, 3) << "too few key gradients exceed the absolute tolerance: zeroed key gradients would pass";
}

INSTANTIATE_TEST_SUITE_P(Tuning, RouterGradients, ::testing::Values(MOME_ROUTER_KIND_FLAT, MOME_ROUTER_KIND_PRODUCT));

TEST(Tuning, BackwardRefusesBadRequests) {
    Fixture f;
    make_fixture(f, MOME_ROUTER_KIND_FLAT);
    Backward b;
    const std::vector<int32_t> route = {1, 2, 3, 64};
    const std::vector<float> weights(kTopK, 0.25f);
    mome_fact_desc fact{sizeof(mome_fact_desc), kTokens.data(), static_cast<int32_t>(kTokens.size()), kAnswerStart, route.data(), weights.data(), nullptr, nullptr};
    mome_fact_grads out{sizeof(mome_fact_grads), b.idx.data(), b.w.data(), b.da.data(), b.db.data(), nullptr, nullptr, {}};
    EXPECT_EQ(mome_bank_fact_backward(f.bank, &fact, &out, 1), MOME_STATUS_OUT_OF_RANGE);  // expert 64 of 64
    EXPECT_NE(std::string(mome_last_error()).find("64"), std::string::npos) << mome_last_error();
    const std::vector<int32_t> good = {1, 2, 3, 4};
    fact.route_indices = good.data();
    out.dwq = b.dwq.data();
    out.dkeys = b.dkeys.data();
    EXPECT_EQ(mome_bank_fact_backward(f.bank, &fact, &out, 1), MOME_STATUS_INVALID_ARGUMENT);  // router gradients need live routing
    EXPECT_NE(std::string(mome_last_error()).find("live routing"), std::string::npos) << mome_last_error();
    out.dkeys = nullptr;
    fact.route_indices = nullptr;
    fact.route_weights = nullptr;
    EXPECT_EQ(mome_bank_fact_backward(f.bank, &fact, &out, 1), MOME_STATUS_INVALID_ARGUMENT);  // dwq without dkeys
    // A cached route gives exactly what live routing gives.
    const Backward live = backward(f.bank, false);
    Backward again;
    mome_fact_desc cached{sizeof(mome_fact_desc), kTokens.data(), static_cast<int32_t>(kTokens.size()), kAnswerStart, live.idx.data(), live.w.data(), nullptr, nullptr};
    mome_fact_grads out2{sizeof(mome_fact_grads), again.idx.data(), again.w.data(), again.da.data(), again.db.data(), nullptr, nullptr, {}};
    ASSERT_EQ(mome_bank_fact_backward(f.bank, &cached, &out2, 1), MOME_STATUS_OK) << mome_last_error();
    EXPECT_EQ(again.da, live.da);
    EXPECT_EQ(again.idx, live.idx);
    // So does a kept prefix (the frozen layers' outputs), with or without the cached route.
    std::vector<float> prefix(static_cast<size_t>(2 * kTokens.size() * kEmbd), NAN);
    cached.prefix_out = prefix.data();
    ASSERT_EQ(mome_bank_fact_backward(f.bank, &cached, &out2, 1), MOME_STATUS_OK) << mome_last_error();
    for (float v : prefix) ASSERT_TRUE(std::isfinite(v));
    for (const int32_t* r : {static_cast<const int32_t*>(nullptr), live.idx.data()}) {
        Backward third;
        mome_fact_desc kept{sizeof(mome_fact_desc), kTokens.data(), static_cast<int32_t>(kTokens.size()), kAnswerStart, r, r ? live.w.data() : nullptr,
                            prefix.data(), nullptr};
        mome_fact_grads out3{sizeof(mome_fact_grads), third.idx.data(), third.w.data(), third.da.data(), third.db.data(), nullptr, nullptr, {}};
        ASSERT_EQ(mome_bank_fact_backward(f.bank, &kept, &out3, 1), MOME_STATUS_OK) << mome_last_error();
        EXPECT_EQ(third.da, live.da);
        EXPECT_EQ(third.db, live.db);
        EXPECT_EQ(third.idx, live.idx);
        EXPECT_EQ(out3.result.loss, live.result.loss);
    }
    // Key rows outside the table and non-finite values are refused.
    std::vector<float> row(kKeyDim, 0.0f);
    EXPECT_EQ(mome_bank_get_key_rows(f.bank, 0, kExperts, 1, row.data()), MOME_STATUS_OUT_OF_RANGE);
    row[3] = NAN;
    EXPECT_EQ(mome_bank_set_key_rows(f.bank, 0, 0, 1, row.data()), MOME_STATUS_INVALID_ARGUMENT);
}


// A CUDA session asked of the CPU-only core (with or without a bank), or of an unknown
// backend, is refused with a message that says why.
TEST(Sessions, CudaRequestsAreRefusedClearly) {
    Fixture f;
    make_fixture(f, MOME_ROUTER_KIND_FLAT);
    mome_session_params sp = session_defaults();
    sp.n_ctx = 32;
    sp.backend = MOME_BACKEND_CUDA;
    mome_session* s = nullptr;
    EXPECT_EQ(mome_session_create(f.model, &sp, &s), MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(std::string(mome_last_error()).find("without CUDA"), std::string::npos) << mome_last_error();
    sp.bank = f.bank;
    EXPECT_EQ(mome_session_create(f.model, &sp, &s), MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(std::string(mome_last_error()).find("without CUDA"), std::string::npos) << mome_last_error();
    sp.bank = nullptr;
    c_set_session_backend(&sp, 7);
    EXPECT_EQ(mome_session_create(f.model, &sp, &s), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(s, nullptr);
}

// A bank that routes per token: every token takes its own route, as a session routing per
// token does; the gradients of each distinct expert against finite differences of the
// session loss (which routes the same way).
TEST(Tuning, PerTokenRoutingGradientsMatchFiniteDifferences) {
    Fixture f;
    make_fixture(f, MOME_ROUTER_KIND_FLAT);
    mome_bank_params bp = bank_defaults();
    bp.n_layers = 1, bp.layers[0] = 0, bp.n_experts = kExperts, bp.key_dim = kKeyDim, bp.top_k = kTopK, bp.rank = kRank;
    bp.routing = MOME_ROUTING_MODE_TOKEN;
    mome_bank* bank = nullptr;
    ASSERT_EQ(mome_bank_create(f.model, &bp, &bank), MOME_STATUS_OK) << mome_last_error();
    MOME_TEST_RNG(rng, 4);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    std::vector<float> values(static_cast<size_t>(kPerExpert));
    for (int64_t e = 0; e < kExperts; ++e) {
        for (float& v : values) v = normal(rng);
        ASSERT_EQ(mome_bank_set_expert(bank, 0, e, nullptr, values.data()), MOME_STATUS_OK);
    }
    const int64_t n = static_cast<int64_t>(kTokens.size()), entries = n * kTopK;
    std::vector<int32_t> idx(static_cast<size_t>(entries)), experts(static_cast<size_t>(entries));
    std::vector<float> w(static_cast<size_t>(entries)), da(static_cast<size_t>(entries * kPerExpert)), db(da.size());
    mome_fact_desc fact{sizeof(mome_fact_desc), kTokens.data(), static_cast<int32_t>(n), kAnswerStart, nullptr, nullptr, nullptr, nullptr, nullptr};
    mome_fact_grads out{sizeof(mome_fact_grads), idx.data(), w.data(), da.data(), db.data(), nullptr, nullptr, {}, 0, experts.data(), 0};
    EXPECT_EQ(mome_bank_fact_backward(bank, &fact, &out, 1), MOME_STATUS_INVALID_ARGUMENT);  // capacity top_k is too small
    EXPECT_NE(std::string(mome_last_error()).find("n_tokens x top_k"), std::string::npos) << mome_last_error();
    out.capacity = static_cast<int32_t>(entries);
    ASSERT_EQ(mome_bank_fact_backward(bank, &fact, &out, 1), MOME_STATUS_OK) << mome_last_error();
    ASSERT_GT(out.n_experts, kTopK) << "tokens should reach more experts than one route holds";
    auto loss = [&] { return session_loss(f.model, bank, kTokens, kAnswerStart); };
    EXPECT_NEAR(out.result.loss, loss(), 1e-4 * std::max(1.0, loss()));
    int checked = 0;
    double da_error = 0, da_norm = 0, db_error = 0, db_norm = 0;
    for (int32_t j = 0; j < out.n_experts; j += 3)
        for (int64_t i : {5L, 70L, 127L})
            for (bool is_a : {true, false}) {
                const int32_t e = experts[static_cast<size_t>(j)];
                std::vector<float> a(static_cast<size_t>(kPerExpert)), b(a.size());
                ASSERT_EQ(mome_bank_get_expert(bank, 0, e, a.data(), b.data()), MOME_STATUS_OK);
                std::vector<float>& target = is_a ? a : b;
                const float keep = target[static_cast<size_t>(i)];
                auto at = [&](float v) {
                    target[static_cast<size_t>(i)] = v;
                    mome_bank_set_expert(bank, 0, e, a.data(), b.data());
                    return loss();
                };
                const double h = 1e-2, numeric = (at(keep + static_cast<float>(h)) - at(keep - static_cast<float>(h))) / (2 * h);
                at(keep);
                const double analytic = (is_a ? da : db)[static_cast<size_t>(j * kPerExpert + i)];
                EXPECT_NEAR(analytic, numeric, 2e-3 + 0.03 * std::fabs(numeric)) << (is_a ? "dA" : "dB") << " expert " << e << " element " << i;
                ++checked;
                (is_a ? da_error : db_error) += (analytic - numeric) * (analytic - numeric);
                (is_a ? da_norm : db_norm) += numeric * numeric;
            }
    EXPECT_GE(checked, 12);
    // Most elements are below the absolute tolerance (a zeroed gradient would pass them):
    // dA and dB are also compared by norm, which must not vanish.
    std::printf("dA: |analytic - numeric| %g, |numeric| %g; dB: %g, %g\n", std::sqrt(da_error), std::sqrt(da_norm), std::sqrt(db_error), std::sqrt(db_norm));
    EXPECT_GT(std::sqrt(da_norm), 1e-5) << "dA vanishes: the check would prove nothing";
    EXPECT_GT(std::sqrt(db_norm), 1e-5) << "dB vanishes: the check would prove nothing";
    EXPECT_LT(std::sqrt(da_error), 0.1 * std::sqrt(da_norm)) << "dA by norm";
    EXPECT_LT(std::sqrt(db_error), 0.1 * std::sqrt(db_norm)) << "dB by norm";
    // Router gradients are for per-sequence banks.
    std::vector<float> dwq(static_cast<size_t>(kKeyDim * kEmbd)), dkeys(static_cast<size_t>(entries * kKeyDim));
    out.dwq = dwq.data(), out.dkeys = dkeys.data();
    EXPECT_EQ(mome_bank_fact_backward(bank, &fact, &out, 1), MOME_STATUS_UNSUPPORTED);
    mome_bank_free(bank);
}
