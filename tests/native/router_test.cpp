// The router's fast paths against brute force: flat top-k (index sets and order, ties to the
// lower index), product keys against all n_sub^2 product scores, every key type, several
// thread counts; and the bad-input errors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

#include "abi_structs.h"
#include "core/error.h"
#include "core/half.h"
#include "cpu/thread_pool.h"
#include "memory/router.h"
#include "test_seed.h"

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

// The keys as the router reads them (rounded to their type).
std::vector<float> stored_values(mome_tensor_type type, const std::vector<float>& values) {
    std::vector<float> out(values);
    if (type == MOME_TENSOR_TYPE_F16) for (float& x : out) x = f16_to_float(float_to_f16(x));
    if (type == MOME_TENSOR_TYPE_BF16) for (float& x : out) x = bf16_to_float(float_to_bf16(x));
    return out;
}

// The route of one query written out plainly, sharing nothing with memory/router: every
// expert's score in double, sorted best first with ties to the lower index, the top k kept,
// and their weights the softmax of score / temperature.
struct BruteForceRoute {
    std::vector<int64_t> indices;
    std::vector<double> scores, weights;
};

BruteForceRoute brute_force(int64_t n_experts, int32_t k, double temperature, const std::function<double(int64_t)>& score) {
    std::vector<std::pair<double, int64_t>> all(static_cast<size_t>(n_experts));
    for (int64_t e = 0; e < n_experts; ++e) all[static_cast<size_t>(e)] = {score(e), e};
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    BruteForceRoute route;
    double sum = 0;
    for (int32_t j = 0; j < k; ++j) {
        route.indices.push_back(all[static_cast<size_t>(j)].second);
        route.scores.push_back(all[static_cast<size_t>(j)].first);
        route.weights.push_back(std::exp((all[static_cast<size_t>(j)].first - all[0].first) / temperature));
        sum += route.weights.back();
    }
    for (double& w : route.weights) w /= sum;
    // The (k+1)-th score, so that a near tie at the boundary is recognised.
    route.scores.push_back(n_experts > k ? all[static_cast<size_t>(k)].first : -INFINITY);
    return route;
}

// Query q of a routed batch against its brute-force route: the j-th score and weight, the
// score of the expert chosen at j recomputed, and the index itself wherever no other
// expert's score lies within float rounding of it.
void expect_matches(const Routed& got, int64_t q, int32_t k, const BruteForceRoute& want, const std::function<double(int64_t)>& score,
                    const std::string& where) {
    const double near = 1e-4;
    for (int32_t j = 0; j < k; ++j) {
        const size_t at = static_cast<size_t>(q * k + j);
        const double s = want.scores[static_cast<size_t>(j)];
        EXPECT_NEAR(got.scores[at], s, near * (1 + std::fabs(s))) << where << " query " << q << " rank " << j;
        EXPECT_NEAR(score(got.indices[at]), s, near * (1 + std::fabs(s))) << where << " query " << q << " rank " << j << ": the score of the expert chosen";
        EXPECT_NEAR(got.weights[at], want.weights[static_cast<size_t>(j)], 1e-5) << where << " query " << q << " rank " << j;
        const bool clear_above = j == 0 || want.scores[static_cast<size_t>(j - 1)] - s > near * (1 + std::fabs(s));
        const bool clear_below = want.scores[static_cast<size_t>(j + 1)] < s - near * (1 + std::fabs(s));
        if (clear_above && clear_below)
            EXPECT_EQ(got.indices[at], want.indices[static_cast<size_t>(j)]) << where << " query " << q << " rank " << j;
    }
}

}  // namespace

TEST(Router, FlatEqualsBruteForce) {
    MOME_TEST_RNG(rng, 11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    struct Case { int64_t n, d; int32_t k; int64_t nq; };
    const Case cases[] = {{1, 4, 1, 1}, {37, 8, 5, 3}, {1000, 16, 32, 9}, {5000, 128, 32, 64}, {64, 32, 64, 2}};
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16})
        for (const Case& c : cases) {
            std::vector<float> keys(static_cast<size_t>(c.n * c.d)), queries(static_cast<size_t>(c.nq * c.d));
            for (float& x : keys) x = normal(rng);
            for (float& x : queries) x = normal(rng);
            const auto bytes = keys_of(type, keys);
            const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, type, c.n, c.d, bytes.data(), c.k, 0.7f};
            const Routed want = run(r, queries, c.nq, 0);
            const std::vector<float> stored = stored_values(type, keys);
            auto exact_score = [&](int64_t q, int64_t e) {
                double dot = 0;
                for (int64_t i = 0; i < c.d; ++i) dot += static_cast<double>(queries[static_cast<size_t>(q * c.d + i)]) * stored[static_cast<size_t>(e * c.d + i)];
                return dot / std::sqrt(static_cast<double>(c.d));
            };
            for (int64_t q = 0; q < c.nq; ++q) {
                auto score = [&](int64_t e) { return exact_score(q, e); };
                expect_matches(want, q, c.k, brute_force(c.n, c.k, 0.7, score), score,
                               "type " + std::to_string(type) + " n " + std::to_string(c.n));
            }
            for (int threads : {1, 3}) {
                const Routed got = run(r, queries, c.nq, threads);
                // The fast path's j-th pick must have the reference's j-th score (exactly
                // recomputed): equal indices, or a swap of experts whose scores tie within
                // rounding (their order then depends on the summation order).
                int64_t swapped = 0;
                for (int64_t q = 0; q < c.nq; ++q)
                    for (int32_t j = 0; j < c.k; ++j) {
                        const size_t at = static_cast<size_t>(q * c.k + j);
                        if (got.indices[at] == want.indices[at]) continue;
                        ++swapped;
                        EXPECT_NEAR(exact_score(q, got.indices[at]), exact_score(q, want.indices[at]),
                                    2e-5 * (1 + std::fabs(want.scores[at])))
                            << "type " << type << " n " << c.n << " threads " << threads << " query " << q << " rank " << j;
                    }
                EXPECT_LE(swapped, static_cast<int64_t>(got.indices.size() / 100)) << "near-ties are rare";
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
    const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, n, d, bytes.data(), 10, 1.0f};
    for (int threads : {0, 1, 4}) {
        const Routed got = run(r, query, 1, threads);
        for (int32_t j = 0; j < 10; ++j) EXPECT_EQ(got.indices[static_cast<size_t>(j)], j) << threads;
        EXPECT_NEAR(got.weights[0], 0.1f, 1e-6f);
    }
}

TEST(Router, ProductKeysEqualBruteForceOverAllProducts) {
    MOME_TEST_RNG(rng, 5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_BF16})
        for (int64_t n_sub : {4, 33, 128}) {
            const int64_t d = 16, nq = 7;
            const int32_t k = static_cast<int32_t>(std::min<int64_t>(n_sub, 32));
            std::vector<float> keys(static_cast<size_t>(2 * n_sub * d / 2)), queries(static_cast<size_t>(nq * d));
            for (float& x : keys) x = normal(rng);
            for (float& x : queries) x = normal(rng);
            const auto bytes = keys_of(type, keys);
            const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_PRODUCT, type, n_sub * n_sub, d, bytes.data(), k, 1.0f};
            const Routed want = run(r, queries, nq, 0);
            // Expert i * n_sub + j scores (q1.K1[i] + q2.K2[j]) / sqrt(d), K1 the first n_sub rows of d/2.
            const std::vector<float> stored = stored_values(type, keys);
            const int64_t half = d / 2;
            for (int64_t q = 0; q < nq; ++q) {
                auto score = [&](int64_t e) {
                    double dot = 0;
                    for (int64_t i = 0; i < half; ++i) {
                        dot += static_cast<double>(queries[static_cast<size_t>(q * d + i)]) * stored[static_cast<size_t>((e / n_sub) * half + i)];
                        dot += static_cast<double>(queries[static_cast<size_t>(q * d + half + i)]) * stored[static_cast<size_t>((n_sub + e % n_sub) * half + i)];
                    }
                    return dot / std::sqrt(static_cast<double>(d));
                };
                expect_matches(want, q, k, brute_force(n_sub * n_sub, k, 1.0, score), score, "product n_sub " + std::to_string(n_sub));
            }
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
    const mome_router_desc ok{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 4, bytes.data(), 2, 1.0f};
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
    EXPECT_EQ(mome_device_alloc(MOME_BACKEND_CUDA, 0, 1024, &ptr), MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(std::string(mome_last_error()).find("without CUDA"), std::string::npos) << mome_last_error();
    EXPECT_EQ(ptr, nullptr);
    const float keys[8] = {1, 2, 3, 4, 5, 6, 7, 8}, query[2] = {1, 1};
    int32_t idx[1];
    float w[1];
    mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 2, keys, 1, 1.0f};
    r.backend = MOME_BACKEND_CUDA;
    EXPECT_EQ(mome_route(&r, query, 1, idx, w, nullptr, 0), MOME_STATUS_UNSUPPORTED);
    r.top_k = 33;  // shape errors come first, naming the limit
    EXPECT_EQ(mome_route(&r, query, 1, idx, w, nullptr, 0), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(mome_device_free(MOME_BACKEND_CUDA, nullptr), MOME_STATUS_OK);
}

// The CPU backends' device memory is host memory: a route over it equals one over plain
// buffers, and a device index other than 0 is refused.
TEST(DeviceMemory, CpuBackendsAllocateHostMemory) {
    const float keys[8] = {1, 2, 3, 4, 5, 6, 7, 8}, query[2] = {1, -1};
    void* d_keys = nullptr;
    ASSERT_EQ(mome_device_alloc(MOME_BACKEND_CPU, 0, sizeof keys, &d_keys), MOME_STATUS_OK) << mome_last_error();
    ASSERT_EQ(mome_device_copy(MOME_BACKEND_CPU, d_keys, keys, sizeof keys, MOME_COPY_KIND_HOST_TO_DEVICE), MOME_STATUS_OK);
    EXPECT_EQ(mome_device_synchronize(MOME_BACKEND_CPU, 0), MOME_STATUS_OK);
    for (mome_backend backend : {MOME_BACKEND_CPU, MOME_BACKEND_CPU_REFERENCE}) {
        mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 2, d_keys, 2, 1.0f};
        r.backend = backend;
        int32_t idx[2];
        float w[2];
        ASSERT_EQ(mome_route(&r, query, 1, idx, w, nullptr, 1), MOME_STATUS_OK) << mome_last_error();
        EXPECT_EQ(idx[0], 0);  // 1-2 = -1 is the largest of -1, -1, -1, -1: ties go to the lower index
        EXPECT_EQ(idx[1], 1);
    }
    EXPECT_EQ(mome_device_free(MOME_BACKEND_CPU, d_keys), MOME_STATUS_OK);
    void* ptr = nullptr;
    EXPECT_EQ(mome_device_alloc(MOME_BACKEND_CPU, 1, 64, &ptr), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("device 0 only"), std::string::npos) << mome_last_error();
    EXPECT_EQ(ptr, nullptr);
}
