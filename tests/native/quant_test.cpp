// Quantized blocks: every layout against blocks encoded here element by element from the
// format description (the test places each element's bits; dequantize_row must read them
// back); the integer dot products against a double-precision dot of the dequantized rows;
// the fast kernels (every ISA variant, several thread counts) against the reference, bit for
// bit (they sum in the same order).
#include <cmath>
#include <cstring>
#include <functional>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "cpu/exp_like_ggml.h"
#include "cpu/ops.h"
#include "cpu/ops_backward.h"
#include "cpu/thread_pool.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_unpacked.h"
#include "quant/quant_variants.h"
#include "test_seed.h"

using namespace mome;

namespace {

const uint32_t kWeightTypes[] = {MOME_TENSOR_TYPE_Q4_0, MOME_TENSOR_TYPE_Q4_1, MOME_TENSOR_TYPE_Q5_0, MOME_TENSOR_TYPE_Q5_1,
                                 MOME_TENSOR_TYPE_Q8_0, MOME_TENSOR_TYPE_Q4_K, MOME_TENSOR_TYPE_Q5_K, MOME_TENSOR_TYPE_Q6_K};

void put_f16(std::vector<uint8_t>& b, size_t at, float x) {
    const uint16_t h = float_to_f16(x);
    std::memcpy(b.data() + at, &h, 2);
}

void put_nibble(uint8_t& byte, bool high, int v) {
    if (high) byte = static_cast<uint8_t>((byte & 0x0F) | (v << 4));
    else byte = static_cast<uint8_t>((byte & 0xF0) | v);
}

// A random block-quantized row of n elements and the value each element must dequantize to,
// built element by element from the layout rules (independent of quant/*.cpp).
struct EncodedRow {
    std::vector<uint8_t> bytes;
    std::vector<float> values;
};

EncodedRow encode(uint32_t type, int64_t n, std::mt19937& rng) {
    EncodedRow r;
    r.values.resize(static_cast<size_t>(n));
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    const bool legacy = type == MOME_TENSOR_TYPE_Q4_0 || type == MOME_TENSOR_TYPE_Q4_1 || type == MOME_TENSOR_TYPE_Q5_0 ||
                        type == MOME_TENSOR_TYPE_Q5_1 || type == MOME_TENSOR_TYPE_Q8_0;
    if (legacy) {
        const bool with_min = type == MOME_TENSOR_TYPE_Q4_1 || type == MOME_TENSOR_TYPE_Q5_1;
        const bool five = type == MOME_TENSOR_TYPE_Q5_0 || type == MOME_TENSOR_TYPE_Q5_1;
        const size_t block = type == MOME_TENSOR_TYPE_Q4_0 ? 18 : type == MOME_TENSOR_TYPE_Q4_1 ? 20 : type == MOME_TENSOR_TYPE_Q5_0 ? 22
                           : type == MOME_TENSOR_TYPE_Q5_1 ? 24 : 34;
        r.bytes.assign(static_cast<size_t>(n / 32) * block, 0);
        for (int64_t b = 0; b < n / 32; ++b) {
            const size_t base = static_cast<size_t>(b) * block;
            const float d = f16_to_float(float_to_f16(scale(rng)));
            const float m = f16_to_float(float_to_f16(-scale(rng) * 8));
            put_f16(r.bytes, base, d);
            if (with_min) put_f16(r.bytes, base + 2, m);
            const size_t qh_at = base + (with_min ? 4 : 2), qs_at = qh_at + (five ? 4 : 0);
            for (int e = 0; e < 32; ++e) {
                float& want = r.values[static_cast<size_t>(b * 32 + e)];
                if (type == MOME_TENSOR_TYPE_Q8_0) {
                    const int q = rnd(-128, 127);
                    r.bytes[qs_at + e] = static_cast<uint8_t>(static_cast<int8_t>(q));
                    want = d * static_cast<float>(q);
                    continue;
                }
                const int q = rnd(0, five ? 31 : 15);
                put_nibble(r.bytes[qs_at + static_cast<size_t>(e % 16)], e >= 16, q & 15);
                if (five && (q & 16)) r.bytes[qh_at + static_cast<size_t>(e / 8)] |= static_cast<uint8_t>(1u << (e % 8));
                const int offset = with_min ? 0 : (five ? 16 : 8);
                want = with_min ? static_cast<float>(q) * d + m : d * static_cast<float>(q - offset);
            }
        }
        return r;
    }
    const size_t block = type == MOME_TENSOR_TYPE_Q4_K ? 144 : type == MOME_TENSOR_TYPE_Q5_K ? 176 : 210;
    r.bytes.assign(static_cast<size_t>(n / 256) * block, 0);
    for (int64_t b = 0; b < n / 256; ++b) {
        uint8_t* blk = r.bytes.data() + static_cast<size_t>(b) * block;
        if (type == MOME_TENSOR_TYPE_Q6_K) {
            // ql[128] qh[64] scales[16] d
            const float d = f16_to_float(float_to_f16(scale(rng) * 0.1f));
            const uint16_t dh = float_to_f16(d);
            std::memcpy(blk + 208, &dh, 2);
            int8_t sc[16];
            for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(rnd(-128, 127));
            std::memcpy(blk + 192, sc, 16);
            for (int e = 0; e < 256; ++e) {
                const int q = rnd(0, 63);
                const int half = e / 128, k = (e % 128) / 32, l = e % 32;
                put_nibble(blk[64 * half + l + 32 * (k & 1)], k >= 2, q & 15);
                blk[128 + 32 * half + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
                r.values[static_cast<size_t>(b * 256 + e)] = d * sc[e / 16] * static_cast<float>(q - 32);
            }
            continue;
        }
        // d dmin scales[12] (qh[32]) qs[128]
        const float d = f16_to_float(float_to_f16(scale(rng) * 0.1f)), dmin = f16_to_float(float_to_f16(scale(rng) * 0.1f));
        put_f16(r.bytes, static_cast<size_t>(b) * block, d);
        put_f16(r.bytes, static_cast<size_t>(b) * block + 2, dmin);
        uint8_t* scales = blk + 4;
        int sc[8], mn[8];
        for (int s = 0; s < 8; ++s) {
            sc[s] = rnd(0, 63);
            mn[s] = rnd(0, 63);
            if (s < 4) {
                scales[s] |= static_cast<uint8_t>(sc[s]);
                scales[s + 4] |= static_cast<uint8_t>(mn[s]);
            } else {
                scales[s + 4] = static_cast<uint8_t>((sc[s] & 15) | ((mn[s] & 15) << 4));
                scales[s - 4] |= static_cast<uint8_t>((sc[s] >> 4) << 6);
                scales[s] |= static_cast<uint8_t>((mn[s] >> 4) << 6);
            }
        }
        const bool five = type == MOME_TENSOR_TYPE_Q5_K;
        uint8_t* qh = blk + 16;
        uint8_t* qs = blk + (five ? 48 : 16);
        for (int e = 0; e < 256; ++e) {
            const int q = rnd(0, five ? 31 : 15);
            const int chunk = e / 64, within = e % 64;
            put_nibble(qs[32 * chunk + within % 32], within >= 32, q & 15);
            if (five && (q & 16)) qh[within % 32] |= static_cast<uint8_t>(1u << (2 * chunk + (within >= 32)));
            const int s = e / 32;
            r.values[static_cast<size_t>(b * 256 + e)] = (d * static_cast<float>(sc[s])) * static_cast<float>(q) - dmin * static_cast<float>(mn[s]);
        }
    }
    return r;
}

// `rows` random rows of `type` (encode), back to back: a matrix's bytes.
std::vector<uint8_t> encode_matrix(uint32_t type, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::vector<uint8_t> bytes;
    for (int64_t r = 0; r < rows; ++r) {
        const EncodedRow row = encode(type, cols, rng);
        bytes.insert(bytes.end(), row.bytes.begin(), row.bytes.end());
    }
    return bytes;
}

std::vector<float> random_vector(int64_t n, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
}

std::string name(uint32_t type) { return mome_tensor_type_name(static_cast<mome_tensor_type>(type)); }

void expect_error(const std::function<void()>& f, const std::string& needle) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Quant, EveryLayoutDequantizesTheElementsEncodedByTheFormatRules) {
    MOME_TEST_RNG(rng, 11);
    for (uint32_t type : kWeightTypes) {
        const EncodedRow row = encode(type, 512, rng);
        ASSERT_EQ(static_cast<int64_t>(row.bytes.size()), quant_row_bytes(type, 512)) << name(type);
        std::vector<float> got(512, NAN);
        dequantize_row(type, row.bytes.data(), 512, got.data());
        for (size_t i = 0; i < got.size(); ++i) ASSERT_FLOAT_EQ(got[i], row.values[i]) << name(type) << " element " << i;
    }
}

TEST(Quant, ActivationsRoundToTheNearestStepOfTheirBlockScale) {
    MOME_TEST_RNG(rng, 12);
    const std::vector<float> x = random_vector(512, rng);
    for (uint32_t act : {MOME_TENSOR_TYPE_Q8_0, MOME_TENSOR_TYPE_Q8_1, MOME_TENSOR_TYPE_Q8_K}) {
        std::vector<uint8_t> q(static_cast<size_t>(quant_row_bytes(act, 512)));
        quantize_activation_row(act, x.data(), 512, q.data());
        UnpackedRow u;
        unpack_activation_row(act, q.data(), 512, u);
        std::vector<float> back(512);
        dequantize_row(act, q.data(), 512, back.data());
        const int64_t block = act == MOME_TENSOR_TYPE_Q8_K ? 256 : 32;
        // Q8_0/Q8_1 store their scale in F16: up to 127 quants x half an F16 ulp of it more.
        const float slack = act == MOME_TENSOR_TYPE_Q8_K ? 0.5001f : 0.5f + 127.0f / 2048;
        for (int64_t b = 0; b < 512 / block; ++b) {
            float max_abs = 0;
            int max_q = 0;
            for (int64_t i = b * block; i < (b + 1) * block; ++i) max_abs = std::max(max_abs, std::fabs(x[static_cast<size_t>(i)]));
            const float step = max_abs / 127;
            for (int64_t i = b * block; i < (b + 1) * block; ++i) {
                max_q = std::max(max_q, std::abs(static_cast<int>(u.q[static_cast<size_t>(i)])));
                EXPECT_LE(std::fabs(back[static_cast<size_t>(i)] - x[static_cast<size_t>(i)]), step * slack) << name(act) << " element " << i;
            }
            EXPECT_EQ(max_q, 127) << name(act);
            if (act == MOME_TENSOR_TYPE_Q8_K)
                for (int g = 0; g < 16; ++g) {
                    int sum = 0;
                    for (int l = 0; l < 16; ++l) sum += u.q[static_cast<size_t>(b * 256 + 16 * g + l)];
                    EXPECT_EQ(u.group[static_cast<size_t>(16 * b + g)], sum);
                }
        }
    }
}

TEST(Quant, DotProductEqualsTheDotOfTheDequantizedRows) {
    MOME_TEST_RNG(rng, 13);
    for (uint32_t type : kWeightTypes) {
        for (int trial = 0; trial < 5; ++trial) {
            const int64_t n = 256 * (1 + trial);
            const EncodedRow w = encode(type, n, rng);
            const std::vector<float> x = random_vector(n, rng);
            const uint32_t act = activation_type_for(type);
            std::vector<uint8_t> a(static_cast<size_t>(quant_row_bytes(act, n)));
            quantize_activation_row(act, x.data(), n, a.data());
            std::vector<float> xa(static_cast<size_t>(n));
            dequantize_row(act, a.data(), n, xa.data());
            double want = 0, magnitude = 0;
            for (int64_t i = 0; i < n; ++i) {
                want += static_cast<double>(w.values[static_cast<size_t>(i)]) * xa[static_cast<size_t>(i)];
                magnitude += std::fabs(static_cast<double>(w.values[static_cast<size_t>(i)]) * xa[static_cast<size_t>(i)]);
            }
            // Q8_1's s is d * sum(q) rounded to F16: a relative 1e-3 of the minimum's term.
            const double tolerance = (act == MOME_TENSOR_TYPE_Q8_1 ? 2e-3 : 1e-5) * magnitude + 1e-6;
            for (QuantKernel kernel : {QuantKernel::vec_dot, QuantKernel::gemv, QuantKernel::gemm}) {
                const float got = quant_dot_ref(type, kernel, w.bytes.data(), a.data(), n);
                EXPECT_NEAR(got, want, tolerance) << name(type) << " n " << n << " kernel " << static_cast<int>(kernel);
            }
        }
    }
}

// ggml's choice (repack.cpp, ggml_repack_get_optimal_repack_type and forward_mul_mat_one_chunk
// in ggml 0.18.0): on x86 only Q4_0 and Q4_K matrices with a multiple of 8 rows are repacked;
// of n tokens the first n - n % 4 go to the gemm, the rest to the gemv.
TEST(Quant, KernelIsTheOneGgmlPicksForTheTypeRowsAndToken) {
    for (uint32_t type : {MOME_TENSOR_TYPE_Q4_0, MOME_TENSOR_TYPE_Q4_K}) {
        for (int64_t t = 0; t < 4; ++t) EXPECT_EQ(quant_kernel_for(type, 64, t, 7), QuantKernel::gemm) << name(type) << " token " << t;
        for (int64_t t = 4; t < 7; ++t) EXPECT_EQ(quant_kernel_for(type, 64, t, 7), QuantKernel::gemv) << name(type) << " token " << t;
        EXPECT_EQ(quant_kernel_for(type, 8, 0, 1), QuantKernel::gemv) << name(type);
        EXPECT_EQ(quant_kernel_for(type, 8, 3, 4), QuantKernel::gemm) << name(type);
        EXPECT_EQ(quant_kernel_for(type, 60, 0, 64), QuantKernel::vec_dot) << name(type) << ": 60 rows are not repacked";
    }
    for (uint32_t type : {MOME_TENSOR_TYPE_Q8_0, MOME_TENSOR_TYPE_Q4_1, MOME_TENSOR_TYPE_Q5_0, MOME_TENSOR_TYPE_Q5_1,
                          MOME_TENSOR_TYPE_Q5_K, MOME_TENSOR_TYPE_Q6_K})
        for (int64_t n : {1, 4, 64}) EXPECT_EQ(quant_kernel_for(type, 64, 0, n), QuantKernel::vec_dot) << name(type);
}

TEST(Quant, FastMatmulEqualsReferenceForEveryTypeVariantAndThreadCount) {
    MOME_TEST_RNG(rng, 14);
    // Up to 4 tokens, Q8_0, Q6_K and (gemv) Q4_K rows are read packed: single tokens over rows
    // of several super-blocks and over more rows than the packed loop's prefetch distance. Row
    // counts that are multiples of 8 and not (Q4_0/Q4_K repacked by ggml or not), token counts
    // with and without a remainder mod 4 (gemm and gemv tokens in one matmul).
    const int64_t shapes[][3] = {{1, 256, 1},  {37, 512, 3}, {70, 256, 9},  {16, 768, 64}, {5, 1024, 1}, {300, 256, 1},
                                 {33, 768, 4}, {64, 512, 6}, {24, 256, 4},  {8, 768, 3},   {40, 512, 1}, {304, 256, 2},
                                 {16, 1024, 7}};
    __builtin_cpu_init();
    std::vector<std::pair<const char*, QuantRowsFn>> variants = {{"portable", quant_rows_portable}};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) variants.push_back({"avx2", quant_rows_avx2});
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) variants.push_back({"avx512", quant_rows_avx512});
    for (uint32_t type : kWeightTypes) {
        for (const auto& s : shapes) {
            const int64_t rows = s[0], cols = s[1], n = s[2];
            const std::vector<uint8_t> bytes = encode_matrix(type, rows, cols, rng);
            const Tensor W{bytes.data(), static_cast<mome_tensor_type>(type), rows, cols};
            const std::vector<float> X = random_vector(n * cols, rng);
            std::vector<float> want(static_cast<size_t>(n * rows)), got(want.size());
            matmul_ref(W, X.data(), n, want.data());
            const uint32_t act = activation_type_for(type);
            const int64_t a_bytes = quant_row_bytes(act, cols);
            std::vector<uint8_t> a(static_cast<size_t>(n * a_bytes));
            std::vector<UnpackedRow> acts(static_cast<size_t>(n));
            for (int64_t t = 0; t < n; ++t) {
                quantize_activation_row(act, X.data() + t * cols, cols, a.data() + t * a_bytes);
                unpack_activation_row(act, a.data() + t * a_bytes, cols, acts[static_cast<size_t>(t)]);
            }
            std::vector<QuantKernel> kernels;
            for (int64_t t = 0; t < n; ++t) kernels.push_back(quant_kernel_for(type, rows, t, n));
            for (const auto& [isa, fn] : variants) {
                std::fill(got.begin(), got.end(), NAN);
                fn(type, bytes.data(), quant_row_bytes(type, cols), rows, cols, acts, kernels, got.data(), 0, rows);
                for (size_t i = 0; i < got.size(); ++i)
                    ASSERT_EQ(got[i], want[i]) << isa << " " << name(type) << " " << rows << "x" << cols;
            }
            for (int threads : {1, 3}) {
                ThreadPool pool(threads);
                std::fill(got.begin(), got.end(), NAN);
                matmul_fast(W, X.data(), n, got.data(), pool);
                for (size_t i = 0; i < got.size(); ++i)
                    ASSERT_EQ(got[i], want[i]) << name(type) << " threads " << threads;
            }
        }
    }
}

// A batch that stands for several calls (a tuner's facts: a question, then one decode step
// per answer token) computes each token as the separate call would: the reference is each
// call's tokens multiplied on their own. Q4_K with 64 rows takes ggml's gemm or gemv by call
// size (Q4_0's two sum alike), so there a one-call batch differs from the separate calls.
TEST(Quant, BatchOfCallsEqualsEachCallOnItsOwn) {
    MOME_TEST_RNG(rng, 15);
    const int64_t rows = 64, cols = 512;
    const std::vector<int64_t> calls = {9, 1, 1, 1, 4, 6, 1};
    const int64_t n = 23;
    std::vector<std::string> differ_as_one_call;
    for (uint32_t type : kWeightTypes) {
        const std::vector<uint8_t> bytes = encode_matrix(type, rows, cols, rng);
        const Tensor W{bytes.data(), static_cast<mome_tensor_type>(type), rows, cols};
        const std::vector<float> X = random_vector(n * cols, rng);
        std::vector<float> want(static_cast<size_t>(n * rows)), got(want.size()), one_call(want.size());
        int64_t t0 = 0;
        for (const int64_t len : calls) {
            matmul_ref(W, X.data() + t0 * cols, len, want.data() + t0 * rows);
            t0 += len;
        }
        matmul_ref(W, X.data(), n, got.data(), calls);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "reference " << name(type) << " output " << i;
        ThreadPool pool(2);
        std::fill(got.begin(), got.end(), NAN);
        matmul_fast(W, X.data(), n, got.data(), pool, calls);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "fast " << name(type) << " output " << i;
        matmul_ref(W, X.data(), n, one_call.data());
        if (one_call != want) differ_as_one_call.push_back(name(type));
    }
    EXPECT_EQ(differ_as_one_call, std::vector<std::string>{"Q4_K"});
    std::vector<float> out(static_cast<size_t>(rows));
    std::vector<uint8_t> bytes(static_cast<size_t>(quant_row_bytes(MOME_TENSOR_TYPE_Q4_K, cols) * rows));
    const Tensor W{bytes.data(), MOME_TENSOR_TYPE_Q4_K, rows, cols};
    const std::vector<float> X(static_cast<size_t>(2 * cols), 0.5f);
    expect_error([&] { matmul_ref(W, X.data(), 2, out.data(), {1, 2}); }, "the calls of a batch add up to its tokens");
    expect_error([&] { matmul_ref(W, X.data(), 2, out.data(), {2, 0}); }, "every call of a batch has a token");
}

TEST(Quant, EmbeddingAndInputGradientUseTheDequantizedRows) {
    MOME_TEST_RNG(rng, 15);
    for (uint32_t type : kWeightTypes) {
        const int64_t rows = 5, cols = 256, n = 3;
        std::vector<uint8_t> bytes;
        std::vector<float> dense;
        for (int64_t r = 0; r < rows; ++r) {
            const EncodedRow row = encode(type, cols, rng);
            bytes.insert(bytes.end(), row.bytes.begin(), row.bytes.end());
            dense.insert(dense.end(), row.values.begin(), row.values.end());
        }
        const Tensor W{bytes.data(), static_cast<mome_tensor_type>(type), rows, cols};
        std::vector<float> out(static_cast<size_t>(cols));
        embed_ref(W, 3, out.data());
        for (int64_t k = 0; k < cols; ++k) ASSERT_FLOAT_EQ(out[static_cast<size_t>(k)], dense[static_cast<size_t>(3 * cols + k)]) << name(type);
        const std::vector<float> dY = random_vector(n * rows, rng);
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), new ThreadPool(2)}) {
            std::vector<float> dX(static_cast<size_t>(n * cols), 0.5f);
            matmul_backward_input(W, dY.data(), n, dX.data(), pool);
            for (int64_t t = 0; t < n; ++t)
                for (int64_t k = 0; k < cols; ++k) {
                    double want = 0.5;
                    for (int64_t r = 0; r < rows; ++r) want += static_cast<double>(dY[static_cast<size_t>(t * rows + r)]) * dense[static_cast<size_t>(r * cols + k)];
                    ASSERT_NEAR(dX[static_cast<size_t>(t * cols + k)], want, 1e-5) << name(type);
                }
            delete pool;
        }
    }
}

TEST(Quant, BadRowsAndTypesAreNamedErrors) {
    std::vector<uint8_t> bytes(1024);
    std::vector<float> out(512);
    expect_error([&] { dequantize_row(MOME_TENSOR_TYPE_Q4_K, bytes.data(), 32, out.data()); }, "not a multiple of the Q4_K block size 256");
    expect_error([&] { dequantize_row(200, bytes.data(), 32, out.data()); }, "unknown tensor type 200");
    expect_error([&] { dequantize_row(MOME_TENSOR_TYPE_Q2_K, bytes.data(), 256, out.data()); }, "cannot dequantize tensor type Q2_K");
    expect_error([&] { activation_type_for(MOME_TENSOR_TYPE_Q3_K); }, "Q3_K has no quantized dot product");
    expect_error([&] { quantize_activation_row(MOME_TENSOR_TYPE_Q4_0, out.data(), 32, bytes.data()); }, "Q4_0 is not an activation type");
}

// A NaN or infinite activation (a model whose weights hold one) quantizes to -128 where the
// value was, as ggml's AVX conversion gives, and leaves the block's other quants as they were:
// no float-to-int cast of NaN, which is undefined (the sanitizer run checks that).
TEST(Quant, NonFiniteActivationsQuantizeToTheSaturatedCode) {
    std::vector<float> x(256);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.37f * std::sin(0.9f * static_cast<float>(i)) - 0.05f;
    auto quants = [](uint32_t act, const std::vector<float>& v, size_t at) {
        std::vector<uint8_t> q(static_cast<size_t>(quant_row_bytes(act, static_cast<int64_t>(v.size()))));
        quantize_activation_row(act, v.data(), static_cast<int64_t>(v.size()), q.data());
        return std::vector<int8_t>(q.begin() + static_cast<std::ptrdiff_t>(at), q.begin() + static_cast<std::ptrdiff_t>(at) + 32);
    };
    for (const auto& [act, qs_at] : {std::pair<uint32_t, size_t>{MOME_TENSOR_TYPE_Q8_0, 2}, {MOME_TENSOR_TYPE_Q8_K, 4}}) {
        std::vector<float> clean = x, with_nan = x;
        clean[5] = 0.0f;
        with_nan[5] = NAN;
        const std::vector<int8_t> want = quants(act, clean, qs_at), got = quants(act, with_nan, qs_at);
        for (int j = 0; j < 32; ++j) EXPECT_EQ(got[j], j == 5 ? -128 : want[j]) << tensor_type_name(act) << " quant " << j;
    }
    std::vector<float> with_inf(x.begin(), x.begin() + 32);
    with_inf[7] = INFINITY;
    const std::vector<int8_t> got = quants(MOME_TENSOR_TYPE_Q8_0, with_inf, 2);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(got[j], j == 7 ? -128 : 0) << "quant " << j;
}

// ggml's vector exp (cpu/exp_like_ggml.h) is an approximation: within 2.5 ulp of the exact
// value wherever the result is a normal float (2.22 measured at worst), 0 far below and
// infinity above, and on more than half of the inputs not libm's expf.
TEST(Quant, ExpLikeGgmlStaysWithinItsBoundOfTheExactValue) {
    int differs_from_libm = 0, n = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.0137f, ++n) {
        const double exact = std::exp(static_cast<double>(x));
        const float got = exp_like_ggml(x);
        const double ulp = std::ldexp(1.0, std::ilogb(exact) - 23);
        ASSERT_LE(std::fabs(got - exact), 2.5 * ulp) << "x " << x;
        differs_from_libm += got != std::exp(x);
    }
    EXPECT_GT(differs_from_libm, n / 4) << "the approximation must not be libm's expf under another name";
    EXPECT_EQ(exp_like_ggml(-110.0f), 0.0f);
    EXPECT_EQ(exp_like_ggml(100.0f), INFINITY);
    EXPECT_EQ(exp_like_ggml(0.0f), 1.0f);
    EXPECT_TRUE(std::isnan(exp_like_ggml(NAN)));
    EXPECT_TRUE(std::isnan(silu_like_ggml(NAN)));
}
