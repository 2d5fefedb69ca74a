// The locality gate against brute force: evidence is the largest cosine with a signature
// (computed here in double precision), gated routes get zero weights and open ones keep theirs
// bit for bit, duplicate signatures are skipped, zero queries are refused or carry no evidence.
#include <cmath>
#include <gtest/gtest.h>
#include <random>
#include <vector>

#include "core/error.h"
#include "memory/bank.h"
#include "memory/gate.h"
#include "test_seed.h"

using namespace mome;

namespace {

mome_bank bank_without_model(int64_t key_dim, int32_t top_k) {
    mome_bank bank;
    bank.params.key_dim = key_dim;
    bank.params.top_k = top_k;
    bank.params.n_layers = 1;
    bank.layers.resize(1);
    bank.layers[0].gate.type = MOME_TENSOR_TYPE_F32;
    bank.layers[0].gate.shape = {0, key_dim};
    return bank;
}

double brute_force_evidence(const std::vector<float>& signatures, const float* q, int64_t d) {
    double qn = 0;
    for (int64_t i = 0; i < d; ++i) qn += double(q[i]) * q[i];
    double best = -1;
    for (size_t s = 0; s * d < signatures.size(); ++s) {
        double dot = 0, sn = 0;
        for (int64_t i = 0; i < d; ++i) {
            dot += double(signatures[s * d + i]) * q[i];
            sn += double(signatures[s * d + i]) * signatures[s * d + i];
        }
        best = std::max(best, dot / std::sqrt(qn * sn));
    }
    return best;
}

}  // namespace

TEST(Gate, EvidenceIsTheLargestCosineAndGatedRoutesGetZeroWeights) {
    MOME_TEST_RNG(rng, 20261201);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t d = 24, n_sig = 200, n_q = 64;
    const int32_t k = 4;
    mome_bank bank = bank_without_model(d, k);
    std::vector<float> raw(static_cast<size_t>(n_sig * d));
    for (float& v : raw) v = normal(rng) * 3.0f;  // not unit length: the gate normalises
    add_gate_signatures(bank, bank.layers[0], raw.data(), n_sig);
    ASSERT_EQ(bank.layers[0].gate.shape[0], n_sig);
    add_gate_signatures(bank, bank.layers[0], raw.data(), 10);
    EXPECT_EQ(bank.layers[0].gate.shape[0], n_sig) << "bit-identical signatures are skipped";

    // Queries: random ones, scaled copies of signatures (cosine 1), and near copies.
    std::vector<float> q(static_cast<size_t>(n_q * d));
    for (int64_t t = 0; t < n_q; ++t)
        for (int64_t i = 0; i < d; ++i) {
            const float sig = raw[static_cast<size_t>((t * 7 % n_sig) * d + i)];
            q[static_cast<size_t>(t * d + i)] = t % 3 == 0 ? normal(rng) : t % 3 == 1 ? 0.5f * sig : sig + 0.3f * normal(rng);
        }
    std::vector<float> evidence(static_cast<size_t>(n_q));
    for (int threads : {1, 3}) {
        gate_evidence(bank, 0, q.data(), n_q, evidence.data(), threads);
        for (int64_t t = 0; t < n_q; ++t)
            EXPECT_NEAR(evidence[static_cast<size_t>(t)], brute_force_evidence(raw, q.data() + t * d, d), 2e-5) << "query " << t;
    }
    for (int64_t t = 1; t < n_q; t += 3) EXPECT_NEAR(evidence[static_cast<size_t>(t)], 1.0, 1e-5);

    // Off: every route keeps its weights. On: below the threshold all k weights are zero.
    std::vector<float> weights(static_cast<size_t>(n_q * k));
    for (float& w : weights) w = std::uniform_real_distribution<float>(0.01f, 1.0f)(rng);
    std::vector<float> gated = weights;
    apply_gate(bank, 0, q.data(), n_q, gated.data(), 1);
    EXPECT_EQ(gated, weights) << "a new layer's gate is off";
    const float threshold = 0.9f;
    bank.layers[0].gate_threshold = threshold;
    apply_gate(bank, 0, q.data(), n_q, gated.data(), 1);
    int closed = 0, open = 0;
    for (int64_t t = 0; t < n_q; ++t) {
        const bool passes = brute_force_evidence(raw, q.data() + t * d, d) >= threshold;
        (passes ? open : closed)++;
        for (int32_t j = 0; j < k; ++j) {
            const size_t at = static_cast<size_t>(t * k + j);
            if (passes) EXPECT_EQ(gated[at], weights[at]) << "query " << t;
            else EXPECT_EQ(gated[at], 0.0f) << "query " << t;
        }
    }
    EXPECT_GT(open, 0);
    EXPECT_GT(closed, 0);
}

TEST(Gate, ZeroQueriesHaveNoEvidenceAndCannotBeSignatures) {
    mome_bank bank = bank_without_model(8, 2);
    std::vector<float> zero(8, 0.0f), one(8, 0.0f);
    one[3] = 2.0f;
    float evidence = 0;
    gate_evidence(bank, 0, one.data(), 1, &evidence, 1);
    EXPECT_EQ(evidence, -1.0f) << "no signatures yet";
    EXPECT_THROW(add_gate_signatures(bank, bank.layers[0], zero.data(), 1), Error);
    EXPECT_EQ(bank.layers[0].gate.shape[0], 0) << "nothing added on failure";
    add_gate_signatures(bank, bank.layers[0], one.data(), 1);
    gate_evidence(bank, 0, zero.data(), 1, &evidence, 1);
    EXPECT_EQ(evidence, -1.0f);
    // With the gate on and no evidence, the route is closed.
    bank.layers[0].gate_threshold = -1.0f;
    std::vector<float> w = {0.5f, 0.5f};
    apply_gate(bank, 0, zero.data(), 1, w.data(), 1);
    EXPECT_EQ(w, std::vector<float>({0.5f, 0.5f})) << "evidence -1 meets threshold -1";
    bank.layers[0].gate_threshold = -0.5f;
    apply_gate(bank, 0, zero.data(), 1, w.data(), 1);
    EXPECT_EQ(w, std::vector<float>({0.0f, 0.0f}));
}
