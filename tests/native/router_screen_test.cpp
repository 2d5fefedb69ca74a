// The flat router's screening pass (cpu/screen.h, route_screened): the route it gives must be
// route_ref's bit for bit (indices, scores, weights), for the portable kernel and, where the
// CPU has it, the AMX kernel, on tables made to trip a BF16 first pass: near-ties closer than
// BF16 can tell apart, keys of very different norms, duplicates, zeros and subnormals. The
// kernels' scores are checked against each other and their filter against their own unfiltered
// output.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

#include "abi_structs.h"
#include "core/error.h"
#include "core/half.h"
#include "cpu/screen.h"
#include "cpu/thread_pool.h"
#include "memory/router.h"
#include "test_seed.h"

using namespace mome;

namespace {

// The table on a cache-line boundary, or `offset` bytes past one (the AMX kernel reads an
// aligned BF16 table in place and copies any other).
CacheLineVector<uint8_t> bytes_of(mome_tensor_type type, const std::vector<float>& values, size_t offset = 0) {
    const size_t elem = type == MOME_TENSOR_TYPE_F32 ? 4 : 2;
    CacheLineVector<uint8_t> storage(values.size() * elem + offset);
    uint8_t* bytes = storage.data() + offset;
    for (size_t i = 0; i < values.size(); ++i) {
        if (type == MOME_TENSOR_TYPE_F32) std::memcpy(bytes + 4 * i, &values[i], 4);
        else {
            const uint16_t h = type == MOME_TENSOR_TYPE_F16 ? float_to_f16(values[i]) : float_to_bf16(values[i]);
            std::memcpy(bytes + 2 * i, &h, 2);
        }
    }
    return storage;
}

// The portable kernel and every accelerated one this CPU runs.
std::vector<ScreenKernel> kernels() {
    std::vector<ScreenKernel> out{{"portable", screen_block_portable}};
    for (const ScreenKernel& k : screen_kernels()) out.push_back(k);
    return out;
}

struct Routed {
    std::vector<int32_t> indices;
    std::vector<float> weights, scores;
};

Routed route_with(const mome_router_desc& r, const std::vector<float>& q, int64_t nq, int threads, ScreenBlockFn screen) {
    const size_t n = static_cast<size_t>(nq * r.top_k);
    Routed out{std::vector<int32_t>(n), std::vector<float>(n), std::vector<float>(n)};
    const RouterOutput o{out.indices.data(), out.weights.data(), out.scores.data()};
    if (!screen) {
        route_ref(r, q.data(), nq, o);
    } else {
        ThreadPool pool(threads);
        route_screened(r, q.data(), nq, o, pool, screen);
    }
    return out;
}

enum class Table { Normal, NearTies, Scales, Duplicates, ZerosAndSubnormals };

const char* name_of(Table t) {
    switch (t) {
        case Table::Normal: return "normal";
        case Table::NearTies: return "near-ties";
        case Table::Scales: return "scales";
        case Table::Duplicates: return "duplicates";
        default: return "zeros-and-subnormals";
    }
}

std::vector<float> make_keys(Table t, int64_t n, int64_t d, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
    std::vector<float> keys(static_cast<size_t>(n * d));
    for (float& x : keys) x = normal(rng);
    if (t == Table::NearTies) {  // 5 base keys, each copy moved by ~1e-5: BF16 sees 5 keys
        for (int64_t e = 5; e < n; ++e)
            for (int64_t i = 0; i < d; ++i)
                keys[static_cast<size_t>(e * d + i)] = keys[static_cast<size_t>((e % 5) * d + i)] * (1 + 1e-5f * normal(rng));
    } else if (t == Table::Scales) {
        for (int64_t e = 0; e < n; ++e) {
            const float s = std::pow(10.0f, uniform(rng));
            for (int64_t i = 0; i < d; ++i) keys[static_cast<size_t>(e * d + i)] *= s;
        }
    } else if (t == Table::Duplicates) {
        for (int64_t e = 0; e < n; ++e)
            for (int64_t i = 0; i < d; ++i) keys[static_cast<size_t>(e * d + i)] = keys[static_cast<size_t>((e % 7) * d + i)];
    } else if (t == Table::ZerosAndSubnormals) {
        for (int64_t e = 0; e < n; ++e)
            for (int64_t i = 0; i < d; ++i) {
                float& x = keys[static_cast<size_t>(e * d + i)];
                if (e % 3 == 0) x = 0;
                else if (e % 3 == 1) x *= 1e-39f;  // subnormal in F32 and BF16 (zero in F16)
            }
    }
    return keys;
}

}  // namespace

TEST(RouterScreen, TheRouteIsTheReferenceBitForBit) {
    MOME_TEST_RNG(rng, 41);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    struct Case { int64_t n, d; int32_t k; int64_t nq; };
    const Case cases[] = {{1, 4, 1, 1}, {37, 8, 5, 3}, {700, 37, 32, 17}, {3000, 128, 32, 64}, {600, 130, 16, 70}, {64, 32, 64, 16}};
    for (const ScreenKernel& kernel : kernels())
        for (Table table : {Table::Normal, Table::NearTies, Table::Scales, Table::Duplicates, Table::ZerosAndSubnormals})
            for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16})
                for (const Case& c : cases) {
                    if (table == Table::NearTies && c.n < 6) continue;
                    const std::vector<float> keys = make_keys(table, c.n, c.d, rng);
                    std::vector<float> queries(static_cast<size_t>(c.nq * c.d));
                    for (float& x : queries) x = normal(rng);
                    // A zero query (every score ties) and one of subnormal elements.
                    if (c.nq > 2) std::fill_n(queries.begin() + c.d, c.d, 0.0f);
                    if (c.nq > 3)
                        for (int64_t i = 0; i < c.d; ++i) queries[static_cast<size_t>(2 * c.d + i)] *= 1e-39f;
                    const auto bytes = bytes_of(type, keys), shifted = bytes_of(type, keys, 16);
                    const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, type, c.n, c.d, bytes.data(), c.k, 0.5f};
                    const Routed want = route_with(r, queries, c.nq, 0, nullptr);
                    for (int threads : {1, 3}) {
                        mome_router_desc rt = r;
                        if (threads == 3) rt.keys = shifted.data() + 16;
                        const Routed got = route_with(rt, queries, c.nq, threads, kernel.fn);
                        const std::string where = std::string(kernel.name) + " " + name_of(table) + " type " + std::to_string(type) + " n " +
                                                  std::to_string(c.n) + " d " + std::to_string(c.d) + " threads " + std::to_string(threads) +
                                                  (threads == 3 ? " (table off a cache line)" : "");
                        EXPECT_EQ(got.indices, want.indices) << where;
                        EXPECT_EQ(got.scores, want.scores) << where;
                        EXPECT_EQ(got.weights, want.weights) << where;
                    }
                }
}

// The accelerated kernel's approximate scores against the plain loops' (the same BF16 inputs,
// summed in another order), and its filter against its own unfiltered output.
TEST(RouterScreen, TheKernelsAgreeAndFilterAsSpecified) {
    const std::vector<ScreenKernel> all = kernels();
    if (all.size() < 2) GTEST_SKIP() << "this CPU has no accelerated screening kernel (screen_isa() = none)";
    for (size_t kernel = 1; kernel < all.size(); ++kernel) {
    MOME_TEST_RNG(rng, 43);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16})
        for (int64_t d : {8, 32, 100, 128})
            for (int64_t nq : {1, 16, 33, 64}) {
                const int64_t n = 77;
                const std::vector<float> keys = make_keys(Table::Scales, n, d, rng);
                std::vector<uint16_t> q16(static_cast<size_t>(nq * d));
                std::vector<float> qf(q16.size());
                for (size_t i = 0; i < q16.size(); ++i) {
                    q16[i] = float_to_bf16(normal(rng));
                    qf[i] = bf16_to_float(q16[i]);
                }
                const ScreenQueries packed = pack_screen_queries(q16.data(), nq, d);
                const auto bytes = bytes_of(type, keys);
                const Tensor block{bytes.data(), type, n, d};
                const std::vector<float> none(static_cast<size_t>(nq), -INFINITY), zero(static_cast<size_t>(nq), 0.0f);
                std::vector<ScreenHit> plain, fast;
                screen_block_portable(block, packed, none.data(), zero.data(), plain);
                all[kernel].fn(block, packed, none.data(), zero.data(), fast);
                ASSERT_EQ(plain.size(), static_cast<size_t>(n * nq));
                ASSERT_EQ(fast.size(), plain.size());
                auto order = [](const ScreenHit& a, const ScreenHit& b) { return a.key != b.key ? a.key < b.key : a.query < b.query; };
                std::sort(plain.begin(), plain.end(), order);
                std::sort(fast.begin(), fast.end(), order);
                for (size_t i = 0; i < plain.size(); ++i) {
                    ASSERT_EQ(fast[i].key, plain[i].key);
                    ASSERT_EQ(fast[i].query, plain[i].query);
                    // |a - a'| <= 2 d 2^-24 |q'| |k'|: two F32 sums of the same exact products.
                    double qn = 0;
                    for (int64_t e = 0; e < d; ++e) qn += static_cast<double>(qf[static_cast<size_t>(plain[i].query * d + e)]) * qf[static_cast<size_t>(plain[i].query * d + e)];
                    const double tolerance = 2.0 * (d + 32) * std::ldexp(1.0, -24) * std::sqrt(qn) * plain[i].norm * 1.01;
                    EXPECT_NEAR(fast[i].score, plain[i].score, tolerance) << all[kernel].name << " type " << type << " d " << d << " nq " << nq << " hit " << i;
                    EXPECT_NEAR(fast[i].norm, plain[i].norm, 1e-5 * plain[i].norm) << "type " << type << " d " << d;
                }
                // Floors at each query's median score, slack 0.01: the hits are exactly the pairs
                // with a + slack n >= floor.
                std::vector<float> floors(static_cast<size_t>(nq)), slacks(static_cast<size_t>(nq), 0.01f);
                for (int64_t q = 0; q < nq; ++q) {
                    std::vector<float> s;
                    for (const ScreenHit& h : fast)
                        if (h.query == q) s.push_back(h.score);
                    std::nth_element(s.begin(), s.begin() + s.size() / 2, s.end());
                    floors[static_cast<size_t>(q)] = s[s.size() / 2];
                }
                std::vector<ScreenHit> filtered;
                all[kernel].fn(block, packed, floors.data(), slacks.data(), filtered);
                std::vector<std::pair<int32_t, int32_t>> want, got;
                for (const ScreenHit& h : fast)
                    if (std::fma(slacks[static_cast<size_t>(h.query)], h.norm, h.score) >= floors[static_cast<size_t>(h.query)]) want.push_back({h.key, h.query});
                for (const ScreenHit& h : filtered) got.push_back({h.key, h.query});
                std::sort(got.begin(), got.end());
                std::sort(want.begin(), want.end());
                EXPECT_EQ(got, want) << all[kernel].name << " type " << type << " d " << d << " nq " << nq;
            }
    }
}

TEST(RouterScreen, ANonFiniteKeyIsAnErrorNamingTheExpert) {
    for (const ScreenKernel& kernel : kernels())
        for (float bad : {NAN, INFINITY}) {
            const int64_t n = 300, d = 32, nq = 16;
            std::vector<float> keys(static_cast<size_t>(n * d), 0.25f), queries(static_cast<size_t>(nq * d), 1.0f);
            keys[static_cast<size_t>(211 * d + 5)] = bad;
            const auto bytes = bytes_of(MOME_TENSOR_TYPE_F32, keys);
            const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, n, d, bytes.data(), 4, 1.0f};
            try {
                route_with(r, queries, nq, 2, kernel.fn);
                ADD_FAILURE() << kernel.name << ": a key holding " << bad << " was accepted";
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find("expert 211"), std::string::npos) << kernel.name << ": " << e.what();
            }
        }
}

// route() screens batches of 8 or more queries where the CPU has a kernel, in slices of 256.
TEST(RouterScreen, RouteScreensLargeBatchesInSlicesWithTheReferenceResult) {
    if (!screen_block_best()) GTEST_SKIP() << "this CPU has no accelerated screening kernel: route() takes the plain F32 scan";
    MOME_TEST_RNG(rng, 47);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t n = 2000, d = 64, nq = 600;
    std::vector<float> keys(static_cast<size_t>(n * d)), queries(static_cast<size_t>(nq * d));
    for (float& x : keys) x = normal(rng);
    for (float& x : queries) x = normal(rng);
    const auto bytes = bytes_of(MOME_TENSOR_TYPE_BF16, keys);
    const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_BF16, n, d, bytes.data(), 8, 1.0f};
    const Routed want = route_with(r, queries, nq, 0, nullptr);
    Routed got{std::vector<int32_t>(want.indices.size()), std::vector<float>(want.weights.size()), std::vector<float>(want.scores.size())};
    ThreadPool pool(2);
    route(r, queries.data(), nq, {got.indices.data(), got.weights.data(), got.scores.data()}, pool);
    EXPECT_EQ(got.indices, want.indices);
    EXPECT_EQ(got.scores, want.scores);
    EXPECT_EQ(got.weights, want.weights);
}
