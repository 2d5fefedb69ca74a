// Shared pieces of the kernel labs: checked CUDA calls, device-side random fill, an L2 flush
// and event timing (median of many runs), JSON lines out.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mome.h"

#define LAB_CUDA(call)                                                                                   \
    do {                                                                                                 \
        const cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                         \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            std::exit(1);                                                                                \
        }                                                                                                \
    } while (0)

inline void lab_ok(mome_status s, const char* what) {
    if (s != MOME_STATUS_OK) {
        std::fprintf(stderr, "%s: status %d: %s\n", what, s, mome_last_error());
        std::exit(1);
    }
}

// Uniform in [-1, 1) from a counter hash: the same values on every run, never zeros.
__device__ inline float lab_hash(uint64_t i, uint64_t seed) {
    uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
    x ^= x >> 31, x *= 0xBF58476D1CE4E5B9ull, x ^= x >> 29;
    return static_cast<float>(x >> 40) / static_cast<float>(1ull << 23) - 1.0f;
}

template <typename T>
__global__ void lab_fill(T* p, uint64_t n, uint64_t seed, float scale) {
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x) {
        const float v = lab_hash(i, seed) * scale;
        if constexpr (sizeof(T) == 2) p[i] = __float2bfloat16_rn(v);
        else p[i] = v;
    }
}

template <typename T>
void lab_random(T* p, uint64_t n, uint64_t seed, float scale = 1.0f) {
    lab_fill<T><<<1024, 256>>>(p, n, seed, scale);
    LAB_CUDA(cudaGetLastError());
}

// Milliseconds of `run` (events around it), the median of `repeats`, with L2 flushed by a
// write of twice its size before each.
template <typename F>
double lab_time_ms(int repeats, F run) {
    int l2 = 0, device = 0;
    LAB_CUDA(cudaGetDevice(&device));
    LAB_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
    void* flush = nullptr;
    LAB_CUDA(cudaMalloc(&flush, 2 * size_t(l2)));
    cudaEvent_t start, stop;
    LAB_CUDA(cudaEventCreate(&start));
    LAB_CUDA(cudaEventCreate(&stop));
    run();  // warm-up
    std::vector<float> times;
    for (int i = 0; i < repeats; ++i) {
        LAB_CUDA(cudaMemsetAsync(flush, i, 2 * size_t(l2)));
        LAB_CUDA(cudaEventRecord(start));
        run();
        LAB_CUDA(cudaEventRecord(stop));
        LAB_CUDA(cudaEventSynchronize(stop));
        float ms = 0;
        LAB_CUDA(cudaEventElapsedTime(&ms, start, stop));
        times.push_back(ms);
    }
    LAB_CUDA(cudaFree(flush));
    LAB_CUDA(cudaEventDestroy(start));
    LAB_CUDA(cudaEventDestroy(stop));
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}
