// The router's fast paths against brute force: flat top-k (index sets and order, ties to the
// lower index), product keys against all n_sub^2 product scores, every key type, several
// thread counts; and the bad-input errors.
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "cpu/thread_pool.h"
#include "memory/router.h"

using namespace mome;

namespace {

std::vector<uint8_t> keys_of(mome_tensor_type type, const std::vector<float>& values) {
    const size_t elem = type == MOME_TENSOR_TYPE_F32 ? 4 : 2;
    std::vector<uint8_t> bytes(values.size() * elem);
    for (size_t i = 0; i < values.size(); ++i) {
        if (type == MOME_TENSOR_TYPE_F32) std::memcpy(bytes.data() + 4 * i, &values[i], 4);
        else {
            const uint16_t h = type == MOME_TENSOR_TYPE_F16 ? float_to_f16(values[i]) : float_to_bf16(values[i]);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
    }
    return bytes;
}

struct Routed {
    std::vector<int32_t> indices;
    std::vector<float> weights, scores;
};

Routed run(const mome_router_desc& r, const std::vector<float>& q, int64_t nq, int threads /* 0: reference */) {
    Routed out{std::vector<int32_t>(static_cast<size_t>(nq * r.top_k)), std::vector<float>(static_cast<size_t>(nq * r.top_k)),
               std::vector<float>(static_cast<size_t>(nq * r.top_k))};
    RouterOutput o{out.indices.data(), out.weights.data(), out.scores.data()};
    if (threads == 0) {
        route_ref(r, q.data(), nq, o);
    } else {
        ThreadPool pool(threads);
        route(r, q.data(), nq, o, pool);
    }
    return out;
}

}  // namespace

TEST(Router, FlatEqualsBruteForce) {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    struct Case { int64_t n, d; int32_t k; int64_t nq; };
    const Case cases[] = {{1, 4, 1, 1}, {37, 8, 5, 3}, {1000, 16, 32, 9}, {5000, 128, 32, 64}, {64, 32, 64, 2}};
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16})
        for (const Case& c : cases) {
            std::vector<float> keys(static_cast<size_t>(c.n * c.d)), queries(static_cast<size_t>(c.nq * c.d));
            for (float& x : keys) x = normal(rng);
            for (float& x : queries) x = normal(rng);
            const auto bytes = keys_of(type, keys);
            const mome_router_desc r{MOME_ROUTER_KIND_FLAT, type, c.n, c.d, bytes.data(), c.k, 0.7f};
            const Routed want = run(r, queries, c.nq, 0);
            for (int threads : {1, 3}) {
                const Routed got = run(r, queries, c.nq, threads);
                EXPECT_EQ(got.indices, want.indices) << "type " << type << " n " << c.n << " threads " << threads;
                for (size_t i = 0; i < want.weights.size(); ++i) {
                    EXPECT_NEAR(got.scores[i], want.scores[i], 1e-4f * (1 + std::fabs(want.scores[i])));
                    EXPECT_NEAR(got.weights[i], want.weights[i], 1e-5f);
                }
            }
            // Weights are a softmax over the top-k: they sum to one and fall with the score.
            double sum = 0;
            for (int32_t j = 0; j < c.k; ++j) sum += want.weights[static_cast<size_t>(j)];
            EXPECT_NEAR(sum, 1.0, 1e-5);
        }
}

TEST(Router, TiesGoToTheLowerIndexWhateverTheThreads) {
    // 300 identical keys: every score ties, so the top-k is 0..k-1 in order.
    const int64_t n = 300, d = 8;
    std::vector<float> keys(static_cast<size_t>(n * d), 0.5f), query(static_cast<size_t>(d), 1.0f);
    const auto bytes = keys_of(MOME_TENSOR_TYPE_F32, keys);
    const mome_router_desc r{MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, n, d, bytes.data(), 10, 1.0f};
    for (int threads : {0, 1, 4}) {
        const Routed got = run(r, query, 1, threads);
        for (int32_t j = 0; j < 10; ++j) EXPECT_EQ(got.indices[static_cast<size_t>(j)], j) << threads;
        EXPECT_NEAR(got.weights[0], 0.1f, 1e-6f);
    }
}

TEST(Router, ProductKeysEqualBruteForceOverAllProducts) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_BF16})
        for (int64_t n_sub : {4, 33, 128}) {
            const int64_t d = 16, nq = 7;
            const int32_t k = static_cast<int32_t>(std::min<int64_t>(n_sub, 32));
            std::vector<float> keys(static_cast<size_t>(2 * n_sub * d / 2)), queries(static_cast<size_t>(nq * d));
            for (float& x : keys) x = normal(rng);
            for (float& x : queries) x = normal(rng);
            const auto bytes = keys_of(type, keys);
            const mome_router_desc r{MOME_ROUTER_KIND_PRODUCT, type, n_sub * n_sub, d, bytes.data(), k, 1.0f};
            const Routed want = run(r, queries, nq, 0);
            for (int threads : {1, 2}) EXPECT_EQ(run(r, queries, nq, threads).indices, want.indices) << "n_sub " << n_sub;
        }
}

TEST(Router, BadInputIsRefused) {
    std::vector<float> keys(16, 1.0f), query(4, 1.0f);
    const auto bytes = keys_of(MOME_TENSOR_TYPE_F32, keys);
    auto refuses = [&](mome_router_desc r, std::vector<float> q, int64_t nq, const char* fragment) {
        try {
            check_router(r, q.data(), nq);
            ADD_FAILURE() << "accepted: " << fragment;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
        }
    };
    const mome_router_desc ok{MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 4, bytes.data(), 2, 1.0f};
    EXPECT_NO_THROW(check_router(ok, query.data(), 1));
    auto r = ok;
    r.top_k = 5;
    refuses(r, query, 1, "top_k");
    r = ok, r.top_k = 0;
    refuses(r, query, 1, "top_k");
    r = ok, r.temperature = 0;
    refuses(r, query, 1, "temperature");
    r = ok, r.kind = MOME_ROUTER_KIND_PRODUCT, r.n_experts = 3;
    refuses(r, query, 1, "square");
    refuses(ok, query, 0, "n_queries");
    std::vector<float> nan_query = query;
    nan_query[2] = NAN;
    refuses(ok, nan_query, 1, "query 0 has a non-finite value");
    // A NaN key surfaces as a non-finite score naming the expert.
    std::vector<float> nan_keys = keys;
    nan_keys[9] = NAN;
    const auto nan_bytes = keys_of(MOME_TENSOR_TYPE_F32, nan_keys);
    mome_router_desc bad_keys = ok;
    bad_keys.keys = nan_bytes.data();
    try {
        run(bad_keys, query, 1, 2);
        ADD_FAILURE() << "NaN key accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("expert 2"), std::string::npos) << e.what();
    }
}

// The CPU-only library (these tests link its CUDA stand-in) refuses every CUDA call clearly.
TEST(CudaAbsent, CallsSayTheLibraryHasNoCuda) {
    void* ptr = nullptr;
    EXPECT_EQ(mome_cuda_alloc(0, 1024, &ptr), MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(std::string(mome_last_error()).find("without CUDA"), std::string::npos) << mome_last_error();
    EXPECT_EQ(ptr, nullptr);
    const float keys[8] = {1, 2, 3, 4, 5, 6, 7, 8}, query[2] = {1, 1};
    int32_t idx[1];
    float w[1];
    mome_router_desc r{MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 2, keys, 1, 1.0f};
    EXPECT_EQ(mome_route_cuda(0, &r, query, 1, idx, w, nullptr, nullptr), MOME_STATUS_UNSUPPORTED);
    r.top_k = 33;  // shape errors come first, naming the limit
    EXPECT_EQ(mome_route_cuda(0, &r, query, 1, idx, w, nullptr, nullptr), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(mome_cuda_free(nullptr), MOME_STATUS_OK);
}
