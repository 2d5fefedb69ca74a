// The device side of a CUDA session: weights in their stored type, the KV cache, a stream
// and the bank's expert tables, all on one device. Shared by the session's forward pass
// (session.cu) and the memory-tuning step (tuning.cu).
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/model_ops.h"
#include "model/llama_weights.h"

namespace mome {

struct DeviceLayer {
    float *attn_norm = nullptr, *ffn_norm = nullptr;
    DeviceMatrix wq, wk, wv, wo, gate, up, down;
};

struct CudaSession {
    int device = 0;
    cudaStream_t stream = nullptr;
    std::vector<void*> allocations;
    DeviceMatrix token_embd, output;
    float* output_norm = nullptr;
    float* rope_freqs = nullptr;
    std::vector<DeviceLayer> layers;
    std::vector<float*> k_cache, v_cache;  // per layer: [n_seq x n_ctx x kv_dim]
    std::vector<const void*> bank_a, bank_b;  // per memory layer slot: the experts' tables, copied at creation

    void* allocate(uint64_t bytes) {
        void* p = nullptr;
        MOME_CUDA(cudaMalloc(&p, bytes));
        allocations.push_back(p);
        return p;
    }
    template <typename T>
    T* upload(const T* host, uint64_t count) {
        T* p = static_cast<T*>(allocate(count * sizeof(T)));
        MOME_CUDA(cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice));
        return p;
    }
    DeviceMatrix upload(const Matrix& m) {
        const uint64_t bytes = static_cast<uint64_t>(m.rows) * m.cols * (m.type == MOME_TENSOR_TYPE_F32 ? 4 : 2);
        return DeviceMatrix{upload(m.data, bytes), m.type, m.rows, m.cols};
    }
};

}  // namespace mome
