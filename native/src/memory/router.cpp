#include "memory/router.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "core/abi_enum.h"
#include "core/error.h"
#include "core/half.h"
#include "cpu/matmul_variants.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "gguf/tensor_types.h"

namespace mome {

namespace {

struct Candidate {
    float score;
    int64_t index;
};

// Higher score first; equal scores: lower index first.
inline bool better(const Candidate& a, const Candidate& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
}

struct Better {
    bool operator()(const Candidate& a, const Candidate& b) const { return better(a, b); }
};

// The best k candidates seen so far, as a heap whose top is the worst of them.
class TopK {
public:
    explicit TopK(int64_t k) : k_(k) { heap_.reserve(static_cast<size_t>(k)); }

    // Returns whether the candidate is (for now) among the best k.
    bool offer(float score, int64_t index) {
        const Candidate c{score, index};
        if (static_cast<int64_t>(heap_.size()) < k_) {
            heap_.push_back(c);
            std::push_heap(heap_.begin(), heap_.end(), Better{});
            return true;
        }
        if (!better(c, heap_.front())) return false;
        std::pop_heap(heap_.begin(), heap_.end(), Better{});
        heap_.back() = c;
        std::push_heap(heap_.begin(), heap_.end(), Better{});
        return true;
    }

    int64_t size() const { return static_cast<int64_t>(heap_.size()); }

    // A score must exceed this to be offered with a later index (-inf until k are held).
    float threshold() const {
        return static_cast<int64_t>(heap_.size()) < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score;
    }

    // Best first.
    std::vector<Candidate> sorted() const {
        std::vector<Candidate> out = heap_;
        std::sort(out.begin(), out.end(), Better{});
        return out;
    }

private:
    int64_t k_;
    std::vector<Candidate> heap_;
};

size_t elem_size(mome_tensor_type t) { return t == MOME_TENSOR_TYPE_F32 ? 4 : 2; }

float key_at(const mome_router_desc& r, int64_t i) {
    const auto* base = static_cast<const uint8_t*>(r.keys);
    if (r.key_type == MOME_TENSOR_TYPE_F32) {
        float x;
        std::memcpy(&x, base + 4 * i, 4);
        return x;
    }
    uint16_t h;
    std::memcpy(&h, base + 2 * i, 2);
    return r.key_type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
}

int64_t n_sub_of(const mome_router_desc& r) { return static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(r.n_experts)))); }

[[noreturn]] void bad_score(int64_t expert, int64_t query) {
    fail(MOME_STATUS_INVALID_ARGUMENT, format("router: the score of expert %lld for query %lld is not finite (a key holds NaN or Inf)",
                                              static_cast<long long>(expert), static_cast<long long>(query)));
}

void finish(const mome_router_desc& r, int64_t q, const std::vector<Candidate>& best, float scale, RouterOutput out) {
    const int64_t k = r.top_k;
    const float top = best[0].score * scale;
    double sum = 0;
    std::vector<double> e(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) {
        e[static_cast<size_t>(j)] = std::exp((static_cast<double>(best[static_cast<size_t>(j)].score) * scale - top) / r.temperature);
        sum += e[static_cast<size_t>(j)];
    }
    for (int64_t j = 0; j < k; ++j) {
        out.indices[q * k + j] = static_cast<int32_t>(best[static_cast<size_t>(j)].index);
        out.weights[q * k + j] = static_cast<float>(e[static_cast<size_t>(j)] / sum);
        if (out.scores) out.scores[q * k + j] = best[static_cast<size_t>(j)].score * scale;
    }
}

// The exact (unscaled) score of query qv with flat expert e: products and sum in double, once
// rounded to float. route_ref and the screened path's rescoring share it.
float exact_score(const mome_router_desc& r, const float* qv, int64_t e) {
    double dot = 0;
    for (int64_t i = 0; i < r.key_dim; ++i) dot += static_cast<double>(qv[i]) * key_at(r, e * r.key_dim + i);
    return static_cast<float>(dot);
}

using RowsFn = MatmulRowsFn;

// Unscaled dot products of queries with keys [first, first + count) of a key table, whose
// keys up to first + readable may be read ahead. A batch of queries uses the transposed-key
// kernel (no horizontal sums); one or a few queries the row-dot kernel, which needs no
// transposition. For one query the kernel sees the keys up to `readable`, so that its
// prefetch runs on into the next block instead of stopping at this one's end.
void score_block(RowsFn rows, const void* keys, mome_tensor_type type, int64_t dim, int64_t first, int64_t count, int64_t readable,
                 const float* queries, int64_t n_queries, float* scores /* [n_queries x count] */) {
    const uint8_t* at = static_cast<const uint8_t*>(keys) + static_cast<uint64_t>(first * dim) * elem_size(type);
    if (n_queries >= 8) score_keys_best()(Tensor{at, type, count, dim}, queries, n_queries, scores);
    else if (n_queries == 1) rows(Tensor{at, type, readable, dim}, queries, 1, scores, 0, count);
    else rows(Tensor{at, type, count, dim}, queries, n_queries, scores, 0, count);
}

// Offers scores s[0..count) of keys first.. to `top`. Most scores of a large table are below
// the k-th best so far: the scan (find_above) skips them in vectors, and only a higher score
// goes through the heap. A non-finite score is an error.
void offer_block(FindAboveFn find_above, const float* s, int64_t count, int64_t first, int64_t q, TopK& top) {
    for (int64_t i = find_above(s, count, top.threshold()); i < count; i += 1 + find_above(s + i + 1, count - i - 1, top.threshold())) {
        if (!std::isfinite(s[i])) bad_score(first + i, q);
        top.offer(s[i], first + i);
    }
}

// The chunks of the flat scan (each a thread's share of the table, with its own top-k per
// query, merged exactly afterwards).
int64_t flat_chunks(int64_t n, int64_t block, int64_t per_thread, ThreadPool& pool) {
    return std::min<int64_t>((n + block - 1) / block, per_thread * pool.size());
}

void merge_and_finish(const mome_router_desc& r, int64_t n_queries, int64_t n_chunks, const std::vector<std::vector<Candidate>>& partial,
                      RouterOutput out) {
    const float scale = 1.0f / std::sqrt(static_cast<float>(r.key_dim));
    for (int64_t q = 0; q < n_queries; ++q) {
        TopK merged(r.top_k);
        for (int64_t chunk = 0; chunk < n_chunks; ++chunk)
            for (const Candidate& c : partial[static_cast<size_t>(chunk * n_queries + q)]) merged.offer(c.score, c.index);
        finish(r, q, merged.sorted(), scale, out);
    }
}

constexpr int64_t kScreenMinQueries = 8;    // below, the plain F32 scan reads the keys at about the same speed
constexpr int64_t kScreenMaxQueries = 256;  // per screened pass

void route_flat(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out, ThreadPool& pool) {
    if (n_queries >= kScreenMinQueries)
        if (const ScreenBlockFn screen = screen_block_best()) {
            // Slices of at most kScreenMaxQueries: the kernel's buffers grow with the batch.
            for (int64_t q0 = 0; q0 < n_queries; q0 += kScreenMaxQueries) {
                const int64_t nq = std::min(kScreenMaxQueries, n_queries - q0), at = q0 * r.top_k;
                const RouterOutput slice{out.indices + at, out.weights + at, out.scores ? out.scores + at : nullptr};
                route_screened(r, queries + q0 * r.key_dim, nq, slice, pool, screen);
            }
            return;
        }
    constexpr int64_t kBlock = 256;  // keys scored together: the block and the queries stay in cache
    const int64_t n = r.n_experts, k = r.top_k;
    const int64_t n_chunks = flat_chunks(n, kBlock, 16, pool);
    const int64_t per_chunk = (n + n_chunks - 1) / n_chunks;
    const RowsFn rows = matmul_rows_best();
    const FindAboveFn find_above = find_above_best();
    // Each chunk keeps its own top-k per query; merging them is exact.
    std::vector<std::vector<Candidate>> partial(static_cast<size_t>(n_chunks * n_queries));
    pool.run(n_chunks, [&](int64_t chunk) {
        const int64_t begin = chunk * per_chunk, end = std::min(n, begin + per_chunk);
        std::vector<TopK> tops(static_cast<size_t>(n_queries), TopK(k));
        std::vector<float> scores(static_cast<size_t>(kBlock * n_queries));
        for (int64_t b = begin; b < end; b += kBlock) {
            const int64_t count = std::min(kBlock, end - b);
            score_block(rows, r.keys, r.key_type, r.key_dim, b, count, end - b, queries, n_queries, scores.data());
            for (int64_t q = 0; q < n_queries; ++q) offer_block(find_above, scores.data() + q * count, count, b, q, tops[static_cast<size_t>(q)]);
        }
        for (int64_t q = 0; q < n_queries; ++q) partial[static_cast<size_t>(chunk * n_queries + q)] = tops[static_cast<size_t>(q)].sorted();
    });
    merge_and_finish(r, n_queries, n_chunks, partial, out);
}

void route_product(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out, ThreadPool& pool) {
    const int64_t n_sub = n_sub_of(r), half = r.key_dim / 2, k = r.top_k;
    const void* table2 = static_cast<const uint8_t*>(r.keys) + static_cast<uint64_t>(n_sub * half) * elem_size(r.key_type);
    const RowsFn rows = matmul_rows_best();
    const float scale = 1.0f / std::sqrt(static_cast<float>(r.key_dim));
    // Both halves of every query against both sub-key tables, as two batched score blocks.
    std::vector<float> q1(static_cast<size_t>(n_queries * half)), q2(q1.size());
    for (int64_t q = 0; q < n_queries; ++q) {
        std::copy_n(queries + q * r.key_dim, half, q1.data() + q * half);
        std::copy_n(queries + q * r.key_dim + half, half, q2.data() + q * half);
    }
    std::vector<float> s1(static_cast<size_t>(n_queries * n_sub)), s2(s1.size());
    pool.run(2, [&](int64_t table) {
        if (table == 0) score_block(rows, r.keys, r.key_type, half, 0, n_sub, n_sub, q1.data(), n_queries, s1.data());
        else score_block(rows, table2, r.key_type, half, 0, n_sub, n_sub, q2.data(), n_queries, s2.data());
    });
    pool.run(n_queries, [&](int64_t q) {
        TopK t1(k), t2(k);
        for (int64_t i = 0; i < n_sub; ++i) {
            const float a = s1[static_cast<size_t>(q * n_sub + i)], b = s2[static_cast<size_t>(q * n_sub + i)];
            if (!std::isfinite(a)) bad_score(i * n_sub, q);
            if (!std::isfinite(b)) bad_score(i, q);
            t1.offer(a, i);
            t2.offer(b, i);
        }
        const std::vector<Candidate> a = t1.sorted(), b = t2.sorted();
        // Both lists are best first: once a pair cannot beat the k-th best so far, no later
        // partner of the same first half can either.
        TopK best(k);
        for (const Candidate& x : a)
            for (const Candidate& y : b) {
                const int64_t before = best.size();
                if (!best.offer(x.score + y.score, x.index * n_sub + y.index) && before == k) break;
            }
        finish(r, q, best.sorted(), scale, out);
    });
}

}  // namespace

void check_router_shape(const mome_router_desc& r, int64_t n_queries) {
    require_arg(r.keys != nullptr, "router keys are null");
    const uint32_t key_type = static_cast<uint32_t>(abi_enum(r.key_type));
    if (!is_compute_type(key_type))
        fail(MOME_STATUS_UNSUPPORTED, format("router: key type %s is not F32, F16 or BF16", tensor_type_name(key_type).c_str()));
    const int32_t kind = abi_enum(r.kind);
    if (kind != MOME_ROUTER_KIND_FLAT && kind != MOME_ROUTER_KIND_PRODUCT)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("router: unknown kind %d", kind));
    if (n_queries < 1 || n_queries > (int64_t(1) << 31))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("router: n_queries = %lld is outside 1..2^31", static_cast<long long>(n_queries)));
    if (r.n_experts < 1 || r.n_experts > INT32_MAX)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("router: n_experts = %lld is outside 1..%d (expert indices are int32)",
                                                  static_cast<long long>(r.n_experts), INT32_MAX));
    if (r.key_dim < 1 || r.key_dim > 65536)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("router: key_dim = %lld is outside 1..65536", static_cast<long long>(r.key_dim)));
    if (r.top_k < 1 || r.top_k > r.n_experts || r.top_k > 65536)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("router: top_k = %d is outside 1..%lld", r.top_k,
                                                  static_cast<long long>(std::min<int64_t>(r.n_experts, 65536))));
    if (!(r.temperature > 0) || !std::isfinite(r.temperature))
        fail(MOME_STATUS_INVALID_ARGUMENT, "router: temperature must be finite and > 0");
    if (r.kind == MOME_ROUTER_KIND_PRODUCT) {
        const int64_t n_sub = n_sub_of(r);
        if (n_sub * n_sub != r.n_experts)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("router: product keys need a square number of experts, not %lld",
                                                      static_cast<long long>(r.n_experts)));
        if (r.key_dim % 2 != 0) fail(MOME_STATUS_INVALID_ARGUMENT, "router: product keys need an even key_dim");
        if (r.top_k > n_sub)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("router: top_k = %d is more than the %lld sub-keys of each half", r.top_k,
                                                      static_cast<long long>(n_sub)));
    }
}

void check_router(const mome_router_desc& r, const float* queries, int64_t n_queries) {
    require_arg(queries != nullptr, "router queries are null");
    check_router_shape(r, n_queries);
    for (int64_t i = 0; i < n_queries * r.key_dim; ++i)
        if (!std::isfinite(queries[i]))
            fail(MOME_STATUS_INVALID_ARGUMENT, format("router: query %lld has a non-finite value (%g) at element %lld",
                                                      static_cast<long long>(i / r.key_dim), static_cast<double>(queries[i]),
                                                      static_cast<long long>(i % r.key_dim)));
}

void route_ref(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out) {
    const int64_t d = r.key_dim;
    for (int64_t q = 0; q < n_queries; ++q) {
        const float* qv = queries + q * d;
        std::vector<Candidate> all(static_cast<size_t>(r.n_experts));
        if (r.kind == MOME_ROUTER_KIND_FLAT) {
            for (int64_t e = 0; e < r.n_experts; ++e) all[static_cast<size_t>(e)] = {exact_score(r, qv, e), e};
        } else {
            const int64_t n_sub = n_sub_of(r), half = d / 2;
            std::vector<float> s1(static_cast<size_t>(n_sub)), s2(static_cast<size_t>(n_sub));
            for (int64_t i = 0; i < n_sub; ++i) {
                double a = 0, b = 0;
                for (int64_t j = 0; j < half; ++j) {
                    a += static_cast<double>(qv[j]) * key_at(r, i * half + j);
                    b += static_cast<double>(qv[half + j]) * key_at(r, (n_sub + i) * half + j);
                }
                s1[static_cast<size_t>(i)] = static_cast<float>(a);
                s2[static_cast<size_t>(i)] = static_cast<float>(b);
            }
            for (int64_t i = 0; i < n_sub; ++i)
                for (int64_t j = 0; j < n_sub; ++j)
                    all[static_cast<size_t>(i * n_sub + j)] = {s1[static_cast<size_t>(i)] + s2[static_cast<size_t>(j)], i * n_sub + j};
        }
        for (const Candidate& c : all)
            if (!std::isfinite(c.score)) bad_score(c.index, q);
        std::sort(all.begin(), all.end(), better);
        all.resize(static_cast<size_t>(r.top_k));
        finish(r, q, all, 1.0f / std::sqrt(static_cast<float>(d)), out);
    }
}

namespace {

// What the screening pass needs per query: the query rounded to BF16 (subnormals to zero, as
// the tiles read them) and the constants of its error bound. For a key k (as stored, norm
// |k|) rounded to k' and the query q rounded to q' (q = q' + dq):
//   q.k - q'.k' = dq.k + q'.(k - k'), with |k - k'| <= 2^-8 |k| + sqrt(d) 2^-126,
// and a sum of d exact BF16 products in F32, in any order, is off by at most
// (d + 32) 2^-24 |q'| |k'|. The exact score's own rounding to float (2^-24 of |q| |k|) is
// covered twice over by the 2^-21 term. So |a - q.k| <= coef |k| + abs with
//   coef = (|dq| + |q'| (2^-8 + (d + 32) 2^-23 + 2^-21)) (1 + 2^-10),
//   abs  = (|q'| sqrt(d) + 2 d) 2^-124 (flushed subnormal keys, products and sums),
// and |k| <= n (1 + (d + 32) 2^-23) + sqrt(d) 2^-62 for the kernel's F32 norm n (its sum of
// squares rounded, or squares below 2^-126 lost), folded into coef and abs.
struct ScreenBounds {
    std::vector<uint16_t> bf16;  // [n_queries x d]
    std::vector<double> coef, abs;
};

ScreenBounds screen_bounds(const float* queries, int64_t n_queries, int64_t d) {
    ScreenBounds b;
    b.bf16.resize(static_cast<size_t>(n_queries * d));
    b.coef.resize(static_cast<size_t>(n_queries));
    b.abs.resize(static_cast<size_t>(n_queries));
    const double dd = static_cast<double>(d), root_d = std::sqrt(dd);
    const double sum_error = (dd + 32) * std::ldexp(1.0, -23), norm_up = 1 + sum_error;
    for (int64_t q = 0; q < n_queries; ++q) {
        double dq2 = 0, qp2 = 0;
        for (int64_t i = 0; i < d; ++i) {
            const float x = queries[q * d + i];
            uint16_t h = float_to_bf16(x);
            float xb = bf16_to_float(h);
            if (!(std::fabs(xb) >= std::numeric_limits<float>::min())) h = 0, xb = 0;
            b.bf16[static_cast<size_t>(q * d + i)] = h;
            dq2 += (static_cast<double>(x) - xb) * (static_cast<double>(x) - xb);
            qp2 += static_cast<double>(xb) * xb;
        }
        const double dq = std::sqrt(dq2), qp = std::sqrt(qp2);
        const double coef = (dq + qp * (std::ldexp(1.0, -8) + sum_error + std::ldexp(1.0, -21))) * (1 + std::ldexp(1.0, -10));
        b.coef[static_cast<size_t>(q)] = coef * norm_up;
        b.abs[static_cast<size_t>(q)] = (qp * root_d + 2 * dd) * std::ldexp(1.0, -124) + coef * root_d * std::ldexp(1.0, -62);
    }
    return b;
}

// The largest float <= x.
float float_down(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) > x) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
    return f;
}

// One chunk of the table for every query of the batch. `lower` holds the k best lower bounds
// (a - e) of the keys seen, each key once, so its k-th is at most the k-th best exact score
// (L). A key of the final top-k has a + e >= its exact score >= L at every step, so it passes
// every filter below and gets its exact score into `exact`, whose top-k is then the answer.
class ScreenedChunk {
public:
    ScreenedChunk(const mome_router_desc& r, const float* queries, int64_t n_queries, const ScreenBounds& bounds)
        : r_(r), queries_(queries), bounds_(bounds), exact_(static_cast<size_t>(n_queries), TopK(r.top_k)),
          lower_(static_cast<size_t>(n_queries), TopK(r.top_k)), pending_(static_cast<size_t>(n_queries)) {}

    // A kernel's hit: expert e for query q with approximate score a and key norm n.
    void hit(int64_t e, int64_t q, float a, float n) {
        const double bound = bounds_.coef[static_cast<size_t>(q)] * n + bounds_.abs[static_cast<size_t>(q)];
        if (!std::isfinite(a) || !std::isfinite(bound)) {  // no bound to go by: the exact score now
            const float s = rescore(e, q);
            lower_[static_cast<size_t>(q)].offer(s, e);
            return;
        }
        TopK& lower = lower_[static_cast<size_t>(q)];
        if (a + bound < lower.threshold()) return;
        lower.offer(float_down(a - bound), e);
        std::vector<Pending>& pending = pending_[static_cast<size_t>(q)];
        pending.push_back({e, a + bound});
        if (static_cast<int64_t>(pending.size()) >= kPendingCap) {
            drop_unreachable(q);
            if (static_cast<int64_t>(pending.size()) >= kPendingCap / 2) rescore_pending(q);
        }
    }

    // The kernel's filter for query q: a + slack n >= floor must hold for every key that can
    // still pass hit(); both rounded so that the kernel's F32 arithmetic errs on the safe side.
    float floor(int64_t q) const {
        const float l = lower_[static_cast<size_t>(q)].threshold();
        if (!std::isfinite(l)) return -std::numeric_limits<float>::infinity();
        return float_down(l - std::fabs(l) * std::ldexp(1.0, -20) - bounds_.abs[static_cast<size_t>(q)] - std::ldexp(1.0, -120));
    }
    float slack(int64_t q) const {
        // The kernel's a + slack n is rounded once, by at most 2^-15 slack n (|a| <= 2^8 coef n).
        return static_cast<float>(bounds_.coef[static_cast<size_t>(q)] * (1 + std::ldexp(1.0, -14)) * (1 + std::ldexp(1.0, -20)));
    }

    std::vector<Candidate> best(int64_t q) {
        drop_unreachable(q);
        rescore_pending(q);
        return exact_[static_cast<size_t>(q)].sorted();
    }

private:
    struct Pending {
        int64_t expert;
        double upper;  // a + e
    };
    static constexpr int64_t kPendingCap = 1024;

    float rescore(int64_t e, int64_t q) {
        const float s = exact_score(r_, queries_ + q * r_.key_dim, e);
        if (!std::isfinite(s)) bad_score(e, q);
        exact_[static_cast<size_t>(q)].offer(s, e);
        return s;
    }
    void drop_unreachable(int64_t q) {
        const float l = lower_[static_cast<size_t>(q)].threshold();
        std::vector<Pending>& pending = pending_[static_cast<size_t>(q)];
        pending.erase(std::remove_if(pending.begin(), pending.end(), [l](const Pending& p) { return p.upper < l; }), pending.end());
    }
    void rescore_pending(int64_t q) {
        for (const Pending& p : pending_[static_cast<size_t>(q)]) rescore(p.expert, q);
        pending_[static_cast<size_t>(q)].clear();
    }

    const mome_router_desc& r_;
    const float* queries_;
    const ScreenBounds& bounds_;
    std::vector<TopK> exact_, lower_;
    std::vector<std::vector<Pending>> pending_;
};

}  // namespace

void route_screened(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out, ThreadPool& pool,
                    ScreenBlockFn screen) {
    constexpr int64_t kBlock = 256;  // keys per kernel call: the floors are renewed between calls
    const int64_t n = r.n_experts;
    const ScreenBounds bounds = screen_bounds(queries, n_queries, r.key_dim);
    const ScreenQueries packed = pack_screen_queries(bounds.bf16.data(), n_queries, r.key_dim);
    // Fewer chunks than the plain scan: each starts with no k-th best, so its first blocks hit often.
    const int64_t n_chunks = flat_chunks(n, kBlock, 4, pool);
    const int64_t per_chunk = (n + n_chunks - 1) / n_chunks;
    std::vector<std::vector<Candidate>> partial(static_cast<size_t>(n_chunks * n_queries));
    pool.run(n_chunks, [&](int64_t chunk) {
        const int64_t begin = chunk * per_chunk, end = std::min(n, begin + per_chunk);
        ScreenedChunk state(r, queries, n_queries, bounds);
        std::vector<float> floors(static_cast<size_t>(n_queries)), slacks(static_cast<size_t>(n_queries));
        for (int64_t q = 0; q < n_queries; ++q) slacks[static_cast<size_t>(q)] = state.slack(q);
        std::vector<ScreenHit> hits;
        for (int64_t b = begin; b < end; b += kBlock) {
            const int64_t count = std::min(kBlock, end - b);
            const Tensor block{static_cast<const uint8_t*>(r.keys) + static_cast<uint64_t>(b * r.key_dim) * elem_size(r.key_type), r.key_type,
                               count, r.key_dim};
            for (int64_t q = 0; q < n_queries; ++q) floors[static_cast<size_t>(q)] = state.floor(q);
            hits.clear();
            screen(block, packed, floors.data(), slacks.data(), hits);
            for (const ScreenHit& h : hits) state.hit(b + h.key, h.query, h.score, h.norm);
        }
        for (int64_t q = 0; q < n_queries; ++q) partial[static_cast<size_t>(chunk * n_queries + q)] = state.best(q);
    });
    merge_and_finish(r, n_queries, n_chunks, partial, out);
}

void route(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out, ThreadPool& pool) {
    if (r.kind == MOME_ROUTER_KIND_FLAT) route_flat(r, queries, n_queries, out, pool);
    else route_product(r, queries, n_queries, out, pool);
}

}  // namespace mome
