// The ABI's CUDA calls: argument checks that need no device data, then the backend.
#include "core/cuda_backend.h"
#include "core/error.h"
#include "cpu/lora.h"
#include "memory/router.h"

using namespace mome;

namespace {

void check_device(int32_t device) {
    if (device < 0 || device > 1023) fail(MOME_STATUS_INVALID_ARGUMENT, format("cuda_device = %d is not a CUDA device index", device));
}

}  // namespace

extern "C" {

mome_status mome_cuda_alloc(int32_t cuda_device, uint64_t bytes, void** out) {
    return guarded([&] {
        require_arg(out != nullptr, "out is null");
        require_arg(bytes > 0, "cannot allocate 0 bytes");
        check_device(cuda_device);
        *out = cuda_alloc(cuda_device, bytes);
    });
}

mome_status mome_cuda_free(void* ptr) {
    return guarded([&] {
        if (ptr) cuda_free(ptr);
    });
}

mome_status mome_cuda_copy(void* dst, const void* src, uint64_t bytes, mome_copy_kind kind) {
    return guarded([&] {
        require_arg(dst != nullptr && src != nullptr, "dst or src is null");
        if (kind != MOME_COPY_KIND_HOST_TO_DEVICE && kind != MOME_COPY_KIND_DEVICE_TO_HOST && kind != MOME_COPY_KIND_DEVICE_TO_DEVICE)
            fail(MOME_STATUS_INVALID_ARGUMENT, "unknown copy kind");
        if (bytes) cuda_copy(dst, src, bytes, kind);
    });
}

mome_status mome_cuda_synchronize(int32_t cuda_device) {
    return guarded([&] {
        check_device(cuda_device);
        cuda_synchronize(cuda_device);
    });
}

mome_status mome_route_cuda(int32_t cuda_device, const mome_router_desc* router, const float* queries, int64_t n_queries,
                            int32_t* out_indices, float* out_weights, float* out_scores, void* stream) {
    return guarded([&] {
        require_arg(router != nullptr && queries != nullptr && out_indices != nullptr && out_weights != nullptr,
                    "router, queries, out_indices or out_weights is null");
        check_device(cuda_device);
        check_router_shape(*router, n_queries);
        if (router->top_k > kCudaMaxTopK)
            fail(MOME_STATUS_UNSUPPORTED, format("the CUDA router keeps at most %d experts per query, not %d", kCudaMaxTopK, router->top_k));
        cuda_route(cuda_device, *router, queries, n_queries, out_indices, out_weights, out_scores, stream);
    });
}

mome_status mome_lora_apply_cuda(int32_t cuda_device, const mome_lora_desc* experts, const float* u, int64_t n_tokens,
                                 const int64_t* segment_offsets, int64_t n_segments, const int32_t* indices, const float* weights,
                                 int32_t top_k, float scale, float* out, void* stream) {
    return guarded([&] {
        require_arg(experts != nullptr && out != nullptr, "experts or out is null");
        check_device(cuda_device);
        lora_tables_of(*experts);
        LoraBatch b;
        b.u = u, b.n_tokens = n_tokens, b.segment_offsets = segment_offsets, b.n_segments = n_segments;
        b.indices = indices, b.weights = weights, b.top_k = top_k, b.scale = scale;
        check_lora_shape(b);
        cuda_lora_apply(cuda_device, *experts, u, n_tokens, segment_offsets, n_segments, indices, weights, top_k, scale, out, stream);
    });
}

}  // extern "C"
