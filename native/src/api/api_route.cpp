// ABI: the router as a standalone operator.
#include <algorithm>
#include <thread>
#include <vector>

#include "core/error.h"
#include "cpu/shared_pools.h"
#include "memory/router.h"

using namespace mome;

extern "C" {

mome_status mome_route(const mome_router_desc* router, const float* queries, int64_t n_queries, int32_t* out_indices,
                       float* out_weights, float* out_scores, int32_t n_threads) {
    return guarded([&] {
        require_arg(router != nullptr && out_indices != nullptr && out_weights != nullptr, "router, out_indices or out_weights is null");
        if (n_threads < 0 || n_threads > 1024) fail(MOME_STATUS_INVALID_ARGUMENT, format("n_threads = %d is outside 0..1024", n_threads));
        check_router(*router, queries, n_queries);
        // Written to scratch first: a failure part-way (a non-finite score) leaves the outputs untouched.
        const size_t n = static_cast<size_t>(n_queries * router->top_k);
        std::vector<int32_t> indices(n);
        std::vector<float> weights(n), scores(n);
        const int threads = n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        route(*router, queries, n_queries, RouterOutput{indices.data(), weights.data(), scores.data()}, shared_pool(threads));
        std::copy(indices.begin(), indices.end(), out_indices);
        std::copy(weights.begin(), weights.end(), out_weights);
        if (out_scores) std::copy(scores.begin(), scores.end(), out_scores);
    });
}

}  // extern "C"
