// The CUDA backend behind the ABI's mome_cuda_* and *_cuda calls: src/cuda/ in a CUDA
// build, core/cuda_absent.cpp (every call UNSUPPORTED) otherwise. Arguments arrive checked
// for shape (api/api_cuda.cpp); data on the device is checked here.
#pragma once

#include <cstdint>
#include <vector>

#include "mome.h"

struct mome_session;
struct mome_bank;

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

// A session's device side: weights, KV cache and a stream on one CUDA device.
struct CudaSession;
CudaSession* cuda_session_create(const mome_session& s, int device);
void destroy_cuda_session(CudaSession* session);
// The same over weights generated on the device from model.seed (s has no host weights);
// `rope_factors`: the Llama 3 factors when the model has them.
CudaSession* cuda_session_create_synthetic(const mome_session& s, int device, const mome_synthetic_params& model,
                                           const std::vector<float>& rope_factors);
// The forward pass of a validated batch (as run_batch on the CPU), logits copied to the host.
void cuda_session_run(mome_session& s, const mome_batch& b, float* logits, int64_t n, int64_t n_out);

// One memory-tuning step (as fact_gradients, without router gradients) on the CUDA session's
// device; `fact` is checked.
struct FactInput;
struct FactGradients;
FactGradients cuda_fact_gradients(mome_session& session, const mome_bank& bank, const FactInput& fact);

}  // namespace mome
