// The memory router: for each query, the top-k experts by score s = q.k / sqrt(d_k), best
// first (equal scores: lower index first), and softmax(s / temperature) weights over them.
// Flat keys (exact over all N) or product keys (two sub-key tables of sqrt(N) each).
#pragma once

#include <cstdint>

#include "cpu/screen.h"
#include "mome.h"

namespace mome {

class ThreadPool;

struct RouterOutput {
    int32_t* indices;  // [n_queries x top_k]
    float* weights;    // [n_queries x top_k]
    float* scores;     // [n_queries x top_k] or null
};

// Throws naming the first bad argument (kind, type, sizes, top_k, temperature); reads no data.
void check_router_shape(const mome_router_desc& r, int64_t n_queries);

// check_router_shape, then every query element must be finite.
void check_router(const mome_router_desc& r, const float* queries, int64_t n_queries);

// Brute force: every score, then a full sort. The reference the fast paths are checked against.
void route_ref(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out);

// Flat, through a screening pass: BF16 approximate scores from `screen` (cpu/screen.h) with an
// error bound per key and query; only keys whose bound reaches the k-th best lower bound so
// far get their exact score, as route_ref computes it, so the result is route_ref's. route
// takes this path for batches where screen_block_best() has a kernel.
void route_screened(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out, ThreadPool& pool,
                    ScreenBlockFn screen);

// Flat: keys scored in blocks shared by all queries of the batch (each key read once per
// batch) with a streaming top-k per query; key chunks spread over the pool, then merged.
// Product: per query, top-k of each half, then top-k of the k x k sums.
void route(const mome_router_desc& r, const float* queries, int64_t n_queries, RouterOutput out, ThreadPool& pool);

}  // namespace mome
