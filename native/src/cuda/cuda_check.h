// Every CUDA runtime call is checked: a failure becomes mome::Error (BACKEND_ERROR, or
// OUT_OF_MEMORY for an allocation) naming the call and CUDA's message, never an abort.
#pragma once

#include <cuda_runtime.h>

#include "core/error.h"

namespace mome {

inline void cuda_check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so that later calls start clean
    fail(e == cudaErrorMemoryAllocation ? MOME_STATUS_OUT_OF_MEMORY : MOME_STATUS_BACKEND_ERROR,
         format("CUDA: %s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e)));
}

#define MOME_CUDA(call) ::mome::cuda_check((call), #call)
// After a kernel launch: launch-configuration errors surface here.
#define MOME_CUDA_LAUNCHED(kernel) ::mome::cuda_check(cudaGetLastError(), "launch of " kernel)

// Makes `device` current for a scope and restores the caller's device after.
class DeviceScope {
public:
    explicit DeviceScope(int device) {
        MOME_CUDA(cudaGetDevice(&previous_));
        if (previous_ != device) MOME_CUDA(cudaSetDevice(device));
    }
    ~DeviceScope() {
        int now = previous_;
        if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
    }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

private:
    int previous_ = 0;
};

// Stream-ordered scratch memory, freed on the same stream when the scope ends.
class StreamScratch {
public:
    StreamScratch(uint64_t bytes, cudaStream_t stream) : stream_(stream) {
        MOME_CUDA(cudaMallocAsync(&ptr_, bytes, stream));
    }
    ~StreamScratch() {
        if (ptr_) cudaFreeAsync(ptr_, stream_);
    }
    StreamScratch(const StreamScratch&) = delete;
    StreamScratch& operator=(const StreamScratch&) = delete;
    template <typename T>
    T* as() const { return static_cast<T*>(ptr_); }

private:
    void* ptr_ = nullptr;
    cudaStream_t stream_;
};

}  // namespace mome
