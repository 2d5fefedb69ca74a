// CPU operators: the fast matmul against the reference on random inputs (every weight
// type, odd shapes, several thread counts), and RoPE against the closed-form angles.
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <vector>

#include "core/half.h"
#include "cpu/ops.h"
#include "cpu/ops_backward.h"
#include "cpu/matmul_variants.h"
#include "cpu/thread_pool.h"
#include "test_seed.h"

using namespace mome;

namespace {

struct RandomMatrix {
    std::vector<uint8_t> bytes;
    Tensor m;
    RandomMatrix(mome_tensor_type type, int64_t rows, int64_t cols, std::mt19937& rng) {
        std::normal_distribution<float> normal(0.0f, 1.0f);
        const size_t elem = type == MOME_TENSOR_TYPE_F32 ? 4 : 2;
        bytes.resize(static_cast<size_t>(rows * cols) * elem);
        for (int64_t i = 0; i < rows * cols; ++i) {
            const float x = normal(rng);
            if (type == MOME_TENSOR_TYPE_F32) std::memcpy(bytes.data() + 4 * i, &x, 4);
            else {
                const uint16_t h = type == MOME_TENSOR_TYPE_F16 ? float_to_f16(x) : float_to_bf16(x);
                std::memcpy(bytes.data() + 2 * i, &h, 2);
            }
        }
        m = Tensor{bytes.data(), type, rows, cols};
    }
};

double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
        den += want[i] * static_cast<double>(want[i]);
    }
    return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST(Matmul, FastEqualsReferenceForEveryTypeShapeAndThreadCount) {
    MOME_TEST_RNG(rng, 7);
    // One-token shapes exercise the decode kernel: rows not a multiple of its 4, widths with
    // one vector (48 for AVX-512, 40 for AVX2) or only a scalar tail (7) after its 2-vector
    // steps, and more rows than its prefetch distance (259 x 1000).
    const int64_t shapes[][3] = {{1, 1, 1},     {5, 7, 3},  {33, 67, 5}, {64, 768, 1}, {130, 96, 35}, {4, 16, 64}, {9, 40, 70},
                                 {6, 33, 2},    {3, 7, 1},  {37, 67, 1}, {9, 48, 1},   {5, 40, 1},    {2, 2048, 1},
                                 {259, 1000, 1}, {70, 768, 45}, {33, 256, 13}, {64, 300, 8}};
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16}) {
        for (const auto& s : shapes) {
            const int64_t rows = s[0], cols = s[1], n = s[2];
            RandomMatrix W(type, rows, cols, rng);
            std::vector<float> X(static_cast<size_t>(n * cols));
            std::normal_distribution<float> normal(0.0f, 1.0f);
            for (float& x : X) x = normal(rng);
            std::vector<float> want(static_cast<size_t>(n * rows)), got(want.size(), NAN);
            matmul_ref(W.m, X.data(), n, want.data());
            // Every instruction-set variant this CPU can run, called directly.
            __builtin_cpu_init();
            std::vector<std::pair<const char*, void (*)(const Tensor&, const float*, int64_t, float*, int64_t, int64_t)>> variants = {
                {"portable", matmul_rows_portable}};
            if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) variants.push_back({"avx2", matmul_rows_avx2});
            if (__builtin_cpu_supports("avx512f")) variants.push_back({"avx512", matmul_rows_avx512});
            for (const auto& [name, rows_fn] : variants) {
                std::fill(got.begin(), got.end(), NAN);
                rows_fn(W.m, X.data(), n, got.data(), 0, rows);
                EXPECT_LT(relative_error(got, want), 1e-6) << name << " type " << type << " shape " << rows << "x" << cols << " tokens " << n;
                // Two row ranges, as two threads get them (the first one's prefetch stops at its end).
                std::fill(got.begin(), got.end(), NAN);
                rows_fn(W.m, X.data(), n, got.data(), 0, rows / 2);
                rows_fn(W.m, X.data(), n, got.data(), rows / 2, rows);
                EXPECT_LT(relative_error(got, want), 1e-6) << name << " split rows, type " << type << " shape " << rows << "x" << cols
                                                           << " tokens " << n;
            }
            for (int threads : {1, 3}) {
                ThreadPool pool(threads);
                std::fill(got.begin(), got.end(), NAN);
                matmul_fast(W.m, X.data(), n, got.data(), pool);
                EXPECT_LT(relative_error(got, want), 1e-6)
                    << "type " << type << " shape " << rows << "x" << cols << " tokens " << n << " threads " << threads;
            }
        }
    }
}

TEST(Rope, AnglesMatchTheClosedForm) {
    const int64_t head_dim = 64, n_heads = 3;
    std::vector<float> factors(head_dim / 2);
    for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + static_cast<float>(i) * 0.25f;
    for (const float* ff : {static_cast<const float*>(nullptr), static_cast<const float*>(factors.data())}) {
        for (int32_t pos : {0, 1, 7, 200}) {
            RopeParams p;
            p.n_rot = head_dim;
            p.freq_base = 500000.0f;
            p.freq_scale = 0.25f;
            p.freq_factors = ff;
            std::vector<float> x(static_cast<size_t>(n_heads * head_dim));
            for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
            std::vector<float> y = x;
            rope_norm_ref(y.data(), n_heads, head_dim, pos, p);
            for (int64_t h = 0; h < n_heads; ++h)
                for (int64_t i = 0; i < head_dim / 2; ++i) {
                    const double theta = pos * 0.25 * std::pow(500000.0, -2.0 * i / head_dim) / (ff ? ff[i] : 1.0);
                    const double a = x[h * head_dim + 2 * i], b = x[h * head_dim + 2 * i + 1];
                    EXPECT_NEAR(y[h * head_dim + 2 * i], a * std::cos(theta) - b * std::sin(theta), 2e-5);
                    EXPECT_NEAR(y[h * head_dim + 2 * i + 1], a * std::sin(theta) + b * std::cos(theta), 2e-5);
                }
        }
    }
}

// The batched RoPE (angles once per position of the batch, rows over the threads) against
// the reference row by row, to the bit: repeated positions (a batch of sequences), positions
// spread wider than the rows, one row, partial rotation, Llama 3.1 factors; forward and
// backward.
TEST(Rope, TheBatchedFormEqualsTheReferenceRowByRow) {
    const int64_t head_dim = 64, n_heads = 3, row = n_heads * head_dim;
    std::vector<float> factors(head_dim / 2);
    for (size_t i = 0; i < factors.size(); ++i) factors[i] = 1.0f + static_cast<float>(i) * 0.25f;
    std::vector<std::vector<int32_t>> batches = {{0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4}, {5, 900, 17, 4000}, {77}, {}};
    std::vector<int32_t> long_batch;
    for (int s = 0; s < 9; ++s)
        for (int32_t t = 0; t < 41; ++t) long_batch.push_back(t + s % 3);
    batches.push_back(long_batch);
    ThreadPool pool(3);
    MOME_TEST_RNG(rng, 4242);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const int64_t n_rot : {head_dim, head_dim / 2})
        for (const float* ff : {static_cast<const float*>(nullptr), static_cast<const float*>(factors.data())})
            for (const std::vector<int32_t>& pos : batches) {
                RopeParams p;
                p.n_rot = n_rot, p.freq_base = 500000.0f, p.freq_scale = 0.5f, p.freq_factors = n_rot == head_dim ? ff : nullptr;
                const int64_t rows = static_cast<int64_t>(pos.size());
                std::vector<float> x(static_cast<size_t>(rows * row));
                for (float& v : x) v = normal(rng);
                std::vector<float> want = x, got = x, want_back = x, got_back = x;
                for (int64_t r = 0; r < rows; ++r) {
                    rope_norm_ref(want.data() + r * row, n_heads, head_dim, pos[static_cast<size_t>(r)], p);
                    rope_norm_backward(want_back.data() + r * row, n_heads, head_dim, pos[static_cast<size_t>(r)], p);
                }
                rope_fast(got.data(), rows, n_heads, head_dim, pos.data(), p, pool);
                rope_backward_fast(got_back.data(), rows, n_heads, head_dim, pos.data(), p, pool);
                if (rows == 0) continue;  // nothing to rotate, and nothing touched (no buffers to compare)
                ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float))) << rows << " rows, n_rot " << n_rot;
                ASSERT_EQ(0, std::memcmp(want_back.data(), got_back.data(), want.size() * sizeof(float))) << rows << " rows (backward)";
                ASSERT_NE(0, std::memcmp(x.data(), got.data(), x.size() * sizeof(float)));  // it did rotate
            }
}

TEST(ThreadPool, RunsEveryChunkOnceAndRethrows) {
    ThreadPool pool(3);
    std::vector<int> hits(1000, 0);
    pool.run(1000, [&](int64_t i) { hits[static_cast<size_t>(i)]++; });
    for (int h : hits) ASSERT_EQ(h, 1);
    EXPECT_THROW(pool.run(10, [](int64_t i) { if (i == 5) throw std::runtime_error("boom"); }), std::runtime_error);
    pool.run(4, [&](int64_t i) { hits[static_cast<size_t>(i)]++; });
    EXPECT_EQ(hits[3], 2);
}

TEST(ScoreKeys, EveryVariantEqualsTheReferenceMatmul) {
    MOME_TEST_RNG(rng, 17);
    __builtin_cpu_init();
    std::vector<std::pair<const char*, void (*)(const Tensor&, const float*, int64_t, float*)>> variants = {{"portable", score_keys_portable}};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) variants.push_back({"avx2", score_keys_avx2});
    if (__builtin_cpu_supports("avx512f")) variants.push_back({"avx512", score_keys_avx512});
    const int64_t shapes[][3] = {{1, 8, 1}, {70, 128, 9}, {257, 64, 64}, {33, 30, 3}};
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_BF16})
        for (const auto& s : shapes) {
            RandomMatrix K(type, s[0], s[1], rng);
            std::vector<float> Q(static_cast<size_t>(s[2] * s[1]));
            std::normal_distribution<float> normal(0.0f, 1.0f);
            for (float& x : Q) x = normal(rng);
            std::vector<float> want(static_cast<size_t>(s[2] * s[0])), got(want.size());
            matmul_ref(K.m, Q.data(), s[2], want.data());
            for (const auto& [name, fn] : variants) {
                std::fill(got.begin(), got.end(), NAN);
                fn(K.m, Q.data(), s[2], got.data());
                EXPECT_LT(relative_error(got, want), 1e-6) << name << " keys " << s[0] << " dim " << s[1] << " queries " << s[2];
            }
        }
}

// The vector F16/BF16 activation rounding equals the scalar code's bit for bit: every
// 65521st bit pattern of all 2^32 (all exponents, subnormals, NaNs), halfway cases and the
// F16 overflow edge; NaN need only stay NaN (its payload is not a value).
TEST(RoundActivations, EveryVariantAndThePooledCallEqualTheScalarRounding) {
    __builtin_cpu_init();
    std::vector<std::pair<const char*, void (*)(mome_tensor_type, const float*, float*, int64_t)>> variants = {
        {"portable", round_activations_portable}};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) variants.push_back({"avx2", round_activations_avx2});
    if (__builtin_cpu_supports("avx512f")) variants.push_back({"avx512", round_activations_avx512});
    std::vector<float> x;
    for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 65521) x.push_back(bits_to_float(static_cast<uint32_t>(bits)));
    for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 3.4e38f, 1e-45f, -1e-45f, 5.9604645e-8f,
                    2.9802322e-8f, 2.9802326e-8f, 6.1035156e-5f, 6.1035152e-5f})
        x.push_back(v);
    for (uint32_t halfway : {0x3f801000u, 0x3f803000u, 0x3f808000u, 0x3f818000u, 0x00008000u, 0x00018000u, 0x7f7f8000u})
        x.push_back(bits_to_float(halfway));  // F16 (bit 12) and BF16 (bit 15) ties, even and odd
    x.push_back(bits_to_float(0x7f800001u));
    x.push_back(bits_to_float(0xffc00000u));
    const auto same = [](float want, float got) {
        return std::isnan(want) ? std::isnan(got) : float_to_bits(want) == float_to_bits(got);
    };
    ThreadPool pool(2);
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16}) {
        std::vector<float> want = x;
        round_activations_like_weights(type, want.data(), static_cast<int64_t>(want.size()));
        std::vector<float> got(x.size());
        for (const auto& [name, fn] : variants) {
            std::fill(got.begin(), got.end(), 1.0f);
            fn(type, x.data(), got.data(), static_cast<int64_t>(x.size()));
            int mismatches = 0;
            for (size_t i = 0; i < x.size(); ++i)
                if (!same(want[i], got[i]) && ++mismatches <= 3)
                    ADD_FAILURE() << name << (type == MOME_TENSOR_TYPE_F16 ? " F16" : " BF16") << " input bits " << std::hex
                                  << float_to_bits(x[i]) << ": want " << float_to_bits(want[i]) << " got " << float_to_bits(got[i]);
        }
        std::fill(got.begin(), got.end(), 1.0f);
        round_activations_fast(type, x.data(), got.data(), static_cast<int64_t>(x.size()), pool);  // several chunks and a tail
        for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(same(want[i], got[i])) << "pooled, element " << i;
    }
}

// SwiGLU's AVX-512 kernel and the pooled call give swiglu_ref's floats bit for bit (NaN as
// NaN): gates from a sweep of every 65521st bit pattern, the edges of exp's range (|n| near
// 126 and 192, subnormal exponentials), zeros, infinities and NaN, times finite ups. And the
// reference is SiLU: within 1e-6 of x up / (1 + exp(-x)) in double where it is finite.
TEST(Swiglu, TheAvx512KernelAndThePooledCallEqualTheReference) {
    MOME_TEST_RNG(rng, 29);
    std::vector<float> gate;
    for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 65521) gate.push_back(bits_to_float(static_cast<uint32_t>(bits)));
    for (float v = -140.0f; v <= 140.0f; v += 0.37f) gate.push_back(v);
    for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, 87.3f, 88.8f, -88.8f, 103.9f, 104.0f, 133.0f, -133.0f, 1e-45f, -1e-45f, 3.4e38f, -3.4e38f})
        gate.push_back(v);
    gate.push_back(bits_to_float(0x7fc00000u));
    gate.push_back(bits_to_float(0xff800001u));
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> up(gate.size());
    for (float& u : up) u = normal(rng);
    up[1] = -0.0f, up[2] = 1e30f;
    const auto n = static_cast<int64_t>(gate.size());
    std::vector<float> want(gate.size()), got(gate.size(), 1.0f), pooled(gate.size(), 1.0f);
    swiglu_ref(gate.data(), up.data(), n, want.data());
    const auto same = [](float a, float b) { return std::isnan(a) ? std::isnan(b) : float_to_bits(a) == float_to_bits(b); };
    int checked = 0;
    for (size_t i = 0; i < gate.size(); ++i) {
        const double x = gate[i], exact = x * up[i] / (1.0 + std::exp(-x));
        if (!std::isfinite(exact) || std::fabs(x) > 80 || std::fabs(exact) < 1e-30) continue;
        ASSERT_NEAR(want[i], exact, 1e-6 * std::fabs(exact)) << "gate " << gate[i] << " up " << up[i];
        ++checked;
    }
    EXPECT_GT(checked, 1000);
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) {
        swiglu_avx512(gate.data(), up.data(), n - 5, got.data());  // a tail of 16 - 5 lanes
        swiglu_avx512(gate.data() + n - 5, up.data() + n - 5, 5, got.data() + n - 5);
        int mismatches = 0;
        for (size_t i = 0; i < gate.size(); ++i)
            if (!same(want[i], got[i]) && ++mismatches <= 3)
                ADD_FAILURE() << "gate bits " << std::hex << float_to_bits(gate[i]) << " up " << up[i] << ": want " << float_to_bits(want[i])
                              << " got " << float_to_bits(got[i]);
        EXPECT_EQ(mismatches, 0);
    }
    ThreadPool pool(2);
    swiglu_fast(gate.data(), up.data(), n, pooled.data(), pool);  // several chunks and a tail
    for (size_t i = 0; i < gate.size(); ++i) ASSERT_TRUE(same(want[i], pooled[i])) << "pooled, element " << i;
    if (!avx512) GTEST_SKIP() << "no AVX-512 on this CPU: only the reference ran";
}

// The router's scan finds, in every variant, the first score above the threshold or not
// finite, as a plain loop does: random lengths (tails), thresholds, NaN and infinities planted.
TEST(FindAbove, EveryVariantFindsTheFirstScoreAboveOrNotFiniteAsALoopDoes) {
    MOME_TEST_RNG(rng, 23);
    __builtin_cpu_init();
    std::vector<std::pair<const char*, int64_t (*)(const float*, int64_t, float)>> variants = {{"portable", find_above_portable}};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) variants.push_back({"avx2", find_above_avx2});
    if (__builtin_cpu_supports("avx512f")) variants.push_back({"avx512", find_above_avx512});
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> length(0, 300), plant(0, 9);
    const float specials[] = {NAN, INFINITY, -INFINITY};
    int found = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        std::vector<float> s(static_cast<size_t>(length(rng)));
        for (float& x : s) x = normal(rng);
        if (!s.empty() && plant(rng) == 0) s[static_cast<size_t>(rng() % s.size())] = specials[rng() % 3];
        const float threshold = trial % 7 == 0 ? -INFINITY : 1.5f + normal(rng);
        int64_t want = static_cast<int64_t>(s.size());
        for (size_t i = 0; i < s.size(); ++i)
            if (s[i] > threshold || std::isnan(s[i]) || std::isinf(s[i])) {
                want = static_cast<int64_t>(i);
                break;
            }
        found += want < static_cast<int64_t>(s.size());
        for (const auto& [name, fn] : variants)
            ASSERT_EQ(fn(s.data(), static_cast<int64_t>(s.size()), threshold), want) << name << ", trial " << trial;
    }
    EXPECT_GT(found, 500);  // the trials found scores, and missed others
    EXPECT_LT(found, 1900);
}

// Attention in double, the plain formula: the independent check of the reference's floats.
std::vector<float> attention_in_double(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int64_t n,
                                       int64_t heads, int64_t kv_heads, int64_t hd) {
    std::vector<float> out(q.size());
    for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h / (heads / kv_heads);
        std::vector<double> s(static_cast<size_t>(n));
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; ++j) {
            double dot = 0;
            for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(q[static_cast<size_t>(h * hd + d)]) * k[static_cast<size_t>((j * kv_heads + kvh) * hd + d)];
            s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(hd));
            max = std::max(max, s[static_cast<size_t>(j)]);
        }
        for (double& x : s) sum += (x = std::exp(x - max));
        for (int64_t d = 0; d < hd; ++d) {
            double acc = 0;
            for (int64_t j = 0; j < n; ++j) acc += s[static_cast<size_t>(j)] * v[static_cast<size_t>((j * kv_heads + kvh) * hd + d)];
            out[static_cast<size_t>(h * hd + d)] = static_cast<float>(acc / sum);
        }
    }
    return out;
}

// The AVX-512 variant equals the reference bit for bit in both of llama.cpp's value orders
// (a one-token call and a longer one), and the reference is attention to float rounding.
// The two orders differ somewhere (or the flag would test nothing).
TEST(Attention, TheAvx512VariantEqualsTheReferenceBitForBitInBothOrders) {
    MOME_TEST_RNG(rng, 18);
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f");
    std::normal_distribution<float> normal(0.0f, 1.0f);
    // {positions, heads, kv heads, head_dim}: position counts below, at and past 16 and 64
    // (the lanes), grouped-query heads, head sizes under 64 (scalar query-key dots), 64, 96 (a
    // scalar tail), 128, 256, and ones not a multiple of 16 (the reference itself).
    const int64_t shapes[][4] = {{1, 4, 4, 64}, {2, 4, 2, 64}, {37, 8, 2, 128}, {300, 6, 3, 64}, {9, 2, 1, 40},
                                 {16, 3, 3, 36}, {64, 4, 1, 256}, {65, 4, 2, 32}, {130, 2, 2, 96}, {17, 2, 1, 16}};
    int orders_differ = 0;
    for (const auto& s : shapes) {
        const int64_t n = s[0], heads = s[1], kv_heads = s[2], hd = s[3];
        std::vector<float> q(static_cast<size_t>(heads * hd)), k(static_cast<size_t>(n * kv_heads * hd)), v(k.size());
        for (float& x : q) x = 2.0f * normal(rng);
        for (float& x : k) x = normal(rng);
        for (float& x : v) x = normal(rng);
        const std::vector<float> exact = attention_in_double(q, k, v, n, heads, kv_heads, hd);
        std::vector<float> by_order[2];
        for (const bool single : {false, true}) {
            std::vector<float> want(q.size()), fast(q.size(), NAN);
            attention_ref(q.data(), k.data(), v.data(), n, heads, kv_heads, hd, single, want.data());
            if (avx512)
                for (int64_t h = 0; h < heads; ++h) attention_head_avx512(q.data(), k.data(), v.data(), n, heads, kv_heads, hd, h, single, fast.data());
            for (size_t i = 0; avx512 && i < q.size(); ++i)
                ASSERT_EQ(std::memcmp(&fast[i], &want[i], 4), 0) << "positions " << n << " head_dim " << hd << " single " << single << " element "
                                                                 << i << ": " << fast[i] << " vs " << want[i];
            EXPECT_LT(relative_error(want, exact), 1e-5) << "positions " << n << " head_dim " << hd;
            by_order[single] = want;
        }
        orders_differ += by_order[0] != by_order[1];
    }
    EXPECT_GT(orders_differ, 0);
    if (!avx512) GTEST_SKIP() << "no AVX-512 on this CPU: only the reference ran";
}
