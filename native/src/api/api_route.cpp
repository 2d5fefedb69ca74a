// ABI: the router as a standalone operator, on the backend its desc names.
#include <algorithm>
#include <vector>

#include "core/abi_struct.h"
#include "core/backend_kind.h"
#include "core/cuda_backend.h"
#include "core/error.h"
#include "cpu/shared_pools.h"
#include "memory/router.h"

using namespace mome;

extern "C" {

mome_status mome_route(const mome_router_desc* router_in, const float* queries, int64_t n_queries, int32_t* out_indices,
                       float* out_weights, float* out_scores, int32_t n_threads) {
    return guarded([&] {
        const mome_router_desc router = read_abi_struct(router_in, mome_router_desc{}, "router is null");
        require_arg(out_indices != nullptr && out_weights != nullptr, "out_indices or out_weights is null");
        check_backend(router.backend, router.device);
        if (is_cuda(router.backend)) {
            require_arg(queries != nullptr, "router queries are null");
            check_router_shape(router, n_queries);
            if (router.top_k > kCudaMaxTopK)
                fail(MOME_STATUS_UNSUPPORTED, format("the CUDA router keeps at most %d experts per query, not %d", kCudaMaxTopK, router.top_k));
            cuda_route(router.device, router, queries, n_queries, out_indices, out_weights, out_scores, router.stream);
            return;
        }
        const int threads = threads_or_all(n_threads);
        check_router(router, queries, n_queries);
        // Written to scratch first: a failure part-way (a non-finite score) leaves the outputs untouched.
        const size_t n = static_cast<size_t>(n_queries * router.top_k);
        std::vector<int32_t> indices(n);
        std::vector<float> weights(n), scores(n);
        const RouterOutput scratch{indices.data(), weights.data(), scores.data()};
        if (host_backend(router.backend, "mome_route")) route_ref(router, queries, n_queries, scratch);
        else route(router, queries, n_queries, scratch, shared_pool(threads));
        std::copy(indices.begin(), indices.end(), out_indices);
        std::copy(weights.begin(), weights.end(), out_weights);
        if (out_scores) std::copy(scores.begin(), scores.end(), out_scores);
    });
}

}  // extern "C"
