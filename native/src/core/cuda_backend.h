// The CUDA kernels behind the ABI's CUDA device memory and mome_route / mome_lora_apply on
// MOME_BACKEND_CUDA: src/cuda/ in a CUDA build, backend/cuda_absent.cpp (every call
// UNSUPPORTED) otherwise. The layer graph reaches CUDA through backend/backend.h's
// make_cuda_backend instead. Arguments arrive checked for shape (api/api_device.cpp,
// api/api_route.cpp, api/api_bank.cpp); data on the device is checked here.
#pragma once

#include <cstdint>
#include <vector>

#include "mome.h"

namespace mome {

void* cuda_alloc(int device, uint64_t bytes);
void cuda_free(void* ptr);
void cuda_copy(void* dst, const void* src, uint64_t bytes, mome_copy_kind kind);
void cuda_synchronize(int device);

// The most experts per query the CUDA router keeps (one per lane of a warp).
constexpr int32_t kCudaMaxTopK = 32;

void cuda_route(int device, const mome_router_desc& r, const float* queries, int64_t n_queries, int32_t* indices, float* weights,
                float* scores, void* stream);

void cuda_lora_apply(int device, const mome_lora_desc& e, const float* u, int64_t n_tokens, const int64_t* segment_offsets,
                     int64_t n_segments, const int32_t* indices, const float* weights, int32_t top_k, float scale, float* out,
                     void* stream);

}  // namespace mome
