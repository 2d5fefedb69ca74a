// Grouped LoRA: the gathered (fast) form against the plain per-expert loop, in both routing
// forms, every storage type, and against a hand-computed case.
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "cpu/thread_pool.h"
#include "cpu/lora.h"
#include "test_seed.h"

using namespace mome;

namespace {

std::vector<uint8_t> random_table(mome_tensor_type type, int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t elem = type == MOME_TENSOR_TYPE_F32 ? 4 : 2;
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * elem);
    for (int64_t i = 0; i < n; ++i) {
        const float x = normal(rng);
        if (type == MOME_TENSOR_TYPE_F32) std::memcpy(bytes.data() + 4 * i, &x, 4);
        else {
            const uint16_t h = type == MOME_TENSOR_TYPE_F16 ? float_to_f16(x) : float_to_bf16(x);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
    }
    return bytes;
}

}  // namespace

TEST(GroupedLora, HandComputedRankOneCase) {
    // Two experts, d = 2, r = 1: A_0 = [1, 2], B_0 = [3, 4]; A_1 = [0, 1], B_1 = [1, 0].
    const float a[] = {1, 2, 0, 1}, b[] = {3, 4, 1, 0};
    LoraTables t{MOME_TENSOR_TYPE_F32, 2, 2, 1, reinterpret_cast<const uint8_t*>(a), reinterpret_cast<const uint8_t*>(b)};
    const float u[] = {1, 1};
    const int64_t offsets[] = {0, 1};
    const int32_t idx[] = {0, 1};
    const float w[] = {0.5f, 0.25f};
    LoraBatch batch{u, 1, offsets, 1, idx, w, 2, 2.0f};
    // 2 * (0.5 * [3,4] * (1+2) + 0.25 * [1,0] * 1) = [9.5, 12]
    float ref[2] = {1, 1}, fast[2] = {1, 1};
    lora_apply_ref(t, batch, ref);
    ThreadPool pool(2);
    lora_apply(t, batch, fast, pool);
    EXPECT_FLOAT_EQ(ref[0], 10.5f);
    EXPECT_FLOAT_EQ(ref[1], 13.0f);
    EXPECT_FLOAT_EQ(fast[0], 10.5f);
    EXPECT_FLOAT_EQ(fast[1], 13.0f);
}

TEST(GroupedLora, GatheredEqualsPlainLoopForBothRoutingForms) {
    MOME_TEST_RNG(rng, 3);
    struct Shape { int64_t n_experts, d; int32_t r, k; int64_t tokens; };
    const Shape shapes[] = {{64, 16, 1, 4, 5}, {300, 67, 3, 32, 9}, {1000, 128, 8, 7, 17}};
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16})
        for (const Shape& s : shapes)
            for (bool per_token : {false, true}) {
                const auto a = random_table(type, s.n_experts * s.r * s.d, rng);
                const auto b = random_table(type, s.n_experts * s.r * s.d, rng);
                LoraTables t{type, s.n_experts, s.d, s.r, a.data(), b.data()};
                std::vector<float> u(static_cast<size_t>(s.tokens * s.d));
                std::normal_distribution<float> normal(0.0f, 1.0f);
                for (float& x : u) x = normal(rng);
                // Per sequence: three uneven segments (one empty); per token: one each.
                std::vector<int64_t> offsets = per_token ? std::vector<int64_t>{} : std::vector<int64_t>{0, 2, 2, s.tokens};
                if (per_token)
                    for (int64_t i = 0; i <= s.tokens; ++i) offsets.push_back(i);
                const int64_t n_seg = static_cast<int64_t>(offsets.size()) - 1;
                std::vector<int32_t> idx(static_cast<size_t>(n_seg * s.k));
                std::vector<float> w(idx.size());
                std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(s.n_experts - 1));
                for (size_t i = 0; i < idx.size(); ++i) idx[i] = pick(rng), w[i] = std::abs(normal(rng));
                LoraBatch batch{u.data(), s.tokens, offsets.data(), n_seg, idx.data(), w.data(), s.k, 0.7f};
                std::vector<float> ref(u.size(), 0.5f), fast(u.size(), 0.5f);
                lora_apply_ref(t, batch, ref.data());
                for (int threads : {1, 3}) {
                    ThreadPool pool(threads);
                    std::fill(fast.begin(), fast.end(), 0.5f);
                    lora_apply(t, batch, fast.data(), pool);
                    double num = 0, den = 0;
                    for (size_t i = 0; i < ref.size(); ++i) num += (ref[i] - fast[i]) * (ref[i] - fast[i]), den += ref[i] * ref[i];
                    EXPECT_LT(std::sqrt(num / den), 1e-5) << "type " << type << " d " << s.d << " per_token " << per_token;
                }
            }
}

TEST(GroupedLora, BadIndicesOffsetsAndWeightsAreRefused) {
    const float a[4] = {}, b[4] = {};
    LoraTables t{MOME_TENSOR_TYPE_F32, 2, 2, 1, reinterpret_cast<const uint8_t*>(a), reinterpret_cast<const uint8_t*>(b)};
    const float u[2] = {1, 1};
    const int64_t offsets[] = {0, 1}, bad_offsets[] = {0, 2};
    const int32_t idx[] = {0, 2};
    const float w[] = {1, NAN};
    const int32_t good_idx[] = {0, 1};
    const float good_w[] = {1, 1};
    EXPECT_THROW(check_lora_batch(t, LoraBatch{u, 1, offsets, 1, idx, good_w, 2, 1}), Error);
    EXPECT_THROW(check_lora_batch(t, LoraBatch{u, 1, offsets, 1, good_idx, w, 2, 1}), Error);
    EXPECT_THROW(check_lora_batch(t, LoraBatch{u, 1, bad_offsets, 1, good_idx, good_w, 2, 1}), Error);
    EXPECT_NO_THROW(check_lora_batch(t, LoraBatch{u, 1, offsets, 1, good_idx, good_w, 2, 1}));
}
