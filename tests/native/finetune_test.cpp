// The fine-tuner's gradients (LoRA adapters on every projection; every weight in full
// fine-tuning) against central finite differences of its loss, on a tiny model; cpu-fast
// against cpu-ref; an adapter's forward against the merged weight W + scale B A; bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

#include "abi_structs.h"
#include "finetune/finetuner.h"
#include "model/model.h"
#include "mome.h"
#include "test_seed.h"
#include "tiny_model.h"

namespace {

using mome::LossResult;

// The tiny preset with F32 weights (F16 weights round the activations of each matmul, which
// finite differences of the adapters would see as noise), tied output embeddings when asked.
struct F32Model {
    mome_model* model = nullptr;
    std::string path;
    F32Model(const char* name, bool tied) {
        path = std::string(::testing::TempDir()) + "mome_" + name + "_" + std::to_string(getpid()) + ".gguf";
        mome_synthetic_params sp = sized<mome_synthetic_params>();
        EXPECT_EQ(mome_synthetic_preset("tiny", &sp), MOME_STATUS_OK);
        sp.init_std = 0.25f, sp.weight_type = MOME_TENSOR_TYPE_F32, sp.tied_output = tied;
        EXPECT_EQ(mome_synthetic_write(&sp, path.c_str()), MOME_STATUS_OK) << mome_last_error();
        EXPECT_EQ(mome_model_open(path.c_str(), nullptr, &model), MOME_STATUS_OK) << mome_last_error();
    }
    ~F32Model() {
        mome_model_free(model);
        unlink(path.c_str());
    }
};

mome_finetuner_params params(mome_finetune_mode mode, mome_backend backend) {
    mome_finetuner_params p = sized<mome_finetuner_params>();
    EXPECT_EQ(mome_finetuner_default_params(&p), MOME_STATUS_OK);
    p.mode = mode, p.rank = 2, p.backend = backend, p.n_threads = 2;
    return p;
}

// Two facts of random tokens: 5 question tokens and 3 answer tokens, then 4 and 2.
void add_facts(mome_finetuner* t, const mome_model* model, std::mt19937& rng) {
    const mome_llama_config& c = model->config;
    std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(c.n_vocab - 1));
    std::vector<int32_t> tokens(14);
    for (int32_t& v : tokens) v = token(rng);
    const int32_t lengths[] = {8, 6}, answers[] = {5, 4};
    ASSERT_EQ(mome_finetuner_add_facts(t, tokens.data(), lengths, answers, 2), MOME_STATUS_OK) << mome_last_error();
}

double loss_of(mome_finetuner& t) {
    double sum = 0;
    for (const LossResult& l : mome::finetuner_gradients(t, 0, 2, false)) sum += l.loss;
    return sum;
}

// Random values in every trained tensor (so that every adapter path carries gradient).
void randomise(mome_finetuner& t, std::mt19937& rng, float stddev) {
    std::normal_distribution<float> normal(0.0f, stddev);
    for (const auto& p : t.trained) {
        float* v = p->value.as();
        for (int64_t i = 0; i < p->count(); ++i) v[i] += normal(rng);
    }
}

// Each trained tensor's gradient along a random direction d against the central difference
// of the loss along d, Richardson-extrapolated: (4 D(h/2) - D(h)) / 3 with
// D(h) = (L(x + h d) - L(x - h d)) / 2h (a directional check sums over every element, so the
// F32 forward's rounding stays far below the signal).
void check_gradients(mome_finetuner& t, std::mt19937& rng) {
    loss_of(t);
    std::vector<std::vector<float>> analytic;
    for (const auto& p : t.trained) analytic.emplace_back(p->grad.as(), p->grad.as() + p->count());
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t k = 0; k < t.trained.size(); ++k) {
        const auto& p = t.trained[k];
        float* v = p->value.as();
        const std::vector<float> x(v, v + p->count());
        std::vector<float> d(x.size());
        double along = 0;
        for (size_t i = 0; i < d.size(); ++i) along += static_cast<double>(d[i] = normal(rng)) * analytic[k][i];
        const auto loss_at = [&](double h) {
            for (size_t i = 0; i < d.size(); ++i) v[i] = static_cast<float>(x[i] + h * d[i]);
            const double l = loss_of(t);
            std::copy(x.begin(), x.end(), v);
            return l;
        };
        const double h = 1e-3;
        const double d1 = (loss_at(h) - loss_at(-h)) / (2 * h), d2 = (loss_at(h / 2) - loss_at(-h / 2)) / h;
        const double fd = (4 * d2 - d1) / 3;
        EXPECT_NEAR(along, fd, 1e-2 * std::fabs(fd) + 1e-3) << "tensor " << k << " [" << p->rows << " x " << p->cols << "]";
    }
    EXPECT_FALSE(t.trained.empty());
}

TEST(Finetune, LoraGradientsMatchFiniteDifferences) {
    F32Model tiny("finetune_lora_fd", false);
    std::mt19937 rng(mome_test::seed_or(20));
    mome_finetuner* t = nullptr;
    const mome_finetuner_params p = params(MOME_FINETUNE_MODE_LORA, MOME_BACKEND_CPU_REFERENCE);
    ASSERT_EQ(mome_finetuner_create(tiny.model, &p, &t), MOME_STATUS_OK) << mome_last_error();
    add_facts(t, tiny.model, rng);
    const mome_llama_config& c = tiny.model->config;
    EXPECT_EQ(t->trained.size(), static_cast<size_t>(2 * 7 * c.n_layer));  // A and B beside 7 projections per block
    randomise(*t, rng, 0.05f);
    check_gradients(*t, rng);
    mome_finetuner_free(t);
}

// Every weight, with a separate output head and with the head tied to the embeddings (one
// table receiving both gradients).
TEST(Finetune, FullGradientsMatchFiniteDifferences) {
    for (const bool tied : {false, true}) {
        F32Model tiny(tied ? "finetune_full_fd_tied" : "finetune_full_fd", tied);
        std::mt19937 rng(mome_test::seed_or(20));
        mome_finetuner* t = nullptr;
        const mome_finetuner_params p = params(MOME_FINETUNE_MODE_FULL, MOME_BACKEND_CPU_REFERENCE);
        ASSERT_EQ(mome_finetuner_create(tiny.model, &p, &t), MOME_STATUS_OK) << mome_last_error();
        add_facts(t, tiny.model, rng);
        const mome_llama_config& c = tiny.model->config;
        EXPECT_EQ(t->trained.size(), static_cast<size_t>(9 * c.n_layer + (tied ? 2 : 3)));
        check_gradients(*t, rng);
        mome_finetuner_free(t);
    }
}

// cpu-fast's gradients (threaded weight-gradient op, SIMD matmuls) equal cpu-ref's.
TEST(Finetune, CpuFastGradientsMatchCpuRef) {
    TinyModel tiny("finetune_fast");
    for (const mome_finetune_mode mode : {MOME_FINETUNE_MODE_LORA, MOME_FINETUNE_MODE_FULL}) {
        std::vector<std::vector<float>> grads[2];
        int i = 0;
        for (const mome_backend backend : {MOME_BACKEND_CPU_REFERENCE, MOME_BACKEND_CPU}) {
            std::mt19937 rng(mome_test::seed_or(20));
            mome_finetuner* t = nullptr;
            const mome_finetuner_params p = params(mode, backend);
            ASSERT_EQ(mome_finetuner_create(tiny.model, &p, &t), MOME_STATUS_OK) << mome_last_error();
            add_facts(t, tiny.model, rng);
            randomise(*t, rng, 0.05f);
            loss_of(*t);
            for (const auto& g : t->trained) grads[i].emplace_back(g->grad.as(), g->grad.as() + g->count());
            mome_finetuner_free(t);
            ++i;
        }
        ASSERT_EQ(grads[0].size(), grads[1].size());
        for (size_t k = 0; k < grads[0].size(); ++k) {
            double diff = 0, norm = 0;
            for (size_t e = 0; e < grads[0][k].size(); ++e) {
                diff += std::pow(grads[1][k][e] - grads[0][k][e], 2);
                norm += std::pow(grads[0][k][e], 2);
            }
            EXPECT_LE(std::sqrt(diff), 1e-4 * std::sqrt(norm) + 1e-9) << "mode " << mode << " tensor " << k;
        }
    }
}

// An adapter's output equals the projection with the merged weight W + scale B A: the
// LoRA fine-tuner's logits against a full fine-tuner's whose F32 copies hold the merged weights.
TEST(Finetune, LoraForwardEqualsMergedWeights) {
    TinyModel tiny("finetune_merged");
    std::mt19937 rng(mome_test::seed_or(20));
    mome_finetuner *lora = nullptr, *full = nullptr;
    const mome_finetuner_params pl = params(MOME_FINETUNE_MODE_LORA, MOME_BACKEND_CPU_REFERENCE);
    const mome_finetuner_params pf = params(MOME_FINETUNE_MODE_FULL, MOME_BACKEND_CPU_REFERENCE);
    ASSERT_EQ(mome_finetuner_create(tiny.model, &pl, &lora), MOME_STATUS_OK) << mome_last_error();
    ASSERT_EQ(mome_finetuner_create(tiny.model, &pf, &full), MOME_STATUS_OK) << mome_last_error();
    randomise(*lora, rng, 0.2f);
    const float scale = pl.alpha / static_cast<float>(pl.rank);
    for (size_t l = 0; l < lora->weights.layers.size(); ++l) {
        mome::LayerWeights& L = full->weights.layers[l];
        const mome::Tensor* merged[mome::kProjections] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down};
        for (int p = 0; p < mome::kProjections; ++p) {
            const mome::ProjectionTraining& a = lora->apply.layers[l].proj[p];
            float* w = const_cast<float*>(merged[p]->f32());
            for (int64_t r = 0; r < merged[p]->rows; ++r)
                for (int64_t k = 0; k < merged[p]->cols; ++k) {
                    double sum = 0;
                    for (int64_t j = 0; j < a.a.rows; ++j) sum += static_cast<double>(a.b.f32()[r * a.b.cols + j]) * a.a.f32()[j * a.a.cols + k];
                    w[r * merged[p]->cols + k] += static_cast<float>(scale * sum);
                }
        }
    }
    const mome_llama_config& c = tiny.model->config;
    const std::vector<int32_t> tokens{1, 5, 9, 2, 7, 3};
    std::vector<float> a(tokens.size() * static_cast<size_t>(c.n_vocab)), b(a.size());
    ASSERT_EQ(mome_finetuner_logits(lora, tokens.data(), 6, a.data()), MOME_STATUS_OK) << mome_last_error();
    ASSERT_EQ(mome_finetuner_logits(full, tokens.data(), 6, b.data()), MOME_STATUS_OK) << mome_last_error();
    double diff = 0, norm = 0, moved = 0;
    std::vector<float> base(a.size());
    const mome_finetuner_params pb = params(MOME_FINETUNE_MODE_LORA, MOME_BACKEND_CPU_REFERENCE);
    mome_finetuner* fresh = nullptr;
    ASSERT_EQ(mome_finetuner_create(tiny.model, &pb, &fresh), MOME_STATUS_OK);
    ASSERT_EQ(mome_finetuner_logits(fresh, tokens.data(), 6, base.data()), MOME_STATUS_OK);
    for (size_t i = 0; i < a.size(); ++i) {
        diff += std::pow(a[i] - b[i], 2), norm += std::pow(b[i], 2), moved += std::pow(a[i] - base[i], 2);
    }
    EXPECT_LE(std::sqrt(diff), 1e-5 * std::sqrt(norm));
    EXPECT_GT(std::sqrt(moved), 1e-2 * std::sqrt(norm));  // the adapters do change the logits
    mome_finetuner_free(fresh);
    mome_finetuner_free(lora);
    mome_finetuner_free(full);
}

TEST(Finetune, BadInputIsRefusedAndChangesNothing) {
    TinyModel tiny("finetune_bad");
    mome_finetuner* t = nullptr;
    mome_finetuner_params p = params(MOME_FINETUNE_MODE_LORA, MOME_BACKEND_CPU);
    p.rank = 0;
    EXPECT_EQ(mome_finetuner_create(tiny.model, &p, &t), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("rank = 0"), std::string::npos) << mome_last_error();
    EXPECT_EQ(t, nullptr);
    p = params(static_cast<mome_finetune_mode>(7), MOME_BACKEND_CPU);
    EXPECT_EQ(mome_finetuner_create(tiny.model, &p, &t), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("mode = 7"), std::string::npos) << mome_last_error();

    p = params(MOME_FINETUNE_MODE_LORA, MOME_BACKEND_CPU);
    ASSERT_EQ(mome_finetuner_create(tiny.model, &p, &t), MOME_STATUS_OK);
    const std::vector<int32_t> tokens{1, 2, 3, 4, 1 << 30, 6};
    const int32_t lengths[] = {3, 3}, answers[] = {2, 1};
    EXPECT_EQ(mome_finetuner_add_facts(t, tokens.data(), lengths, answers, 2), MOME_STATUS_OUT_OF_RANGE);
    EXPECT_NE(std::string(mome_last_error()).find("fact 2"), std::string::npos) << mome_last_error();
    mome_finetuner_info info;
    ASSERT_EQ(mome_finetuner_get_info(t, &info), MOME_STATUS_OK);
    EXPECT_EQ(info.n_facts, 0);
    mome_finetuner_step_result r = sized<mome_finetuner_step_result>();
    EXPECT_EQ(mome_finetuner_step(t, &r), MOME_STATUS_INVALID_ARGUMENT);  // no facts
    mome_finetuner_free(t);
}

}  // namespace
