// Device memory for ABI callers: allocation, copies and synchronisation, all checked.
#include "core/cuda_backend.h"
#include "cuda/cuda_check.h"

namespace mome {

void* cuda_alloc(int device, uint64_t bytes) {
    DeviceScope scope(device);
    void* ptr = nullptr;
    const cudaError_t e = cudaMalloc(&ptr, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        fail(MOME_STATUS_OUT_OF_MEMORY, format("CUDA device %d: cannot allocate %.2f GiB (%.2f GiB free of %.2f)", device,
                                               bytes / 1073741824.0, free_bytes / 1073741824.0, total / 1073741824.0));
    }
    cuda_check(e, "cudaMalloc");
    return ptr;
}

void cuda_free(void* ptr) { MOME_CUDA(cudaFree(ptr)); }

void cuda_copy(void* dst, const void* src, uint64_t bytes, mome_copy_kind kind) {
    const cudaMemcpyKind k = kind == MOME_COPY_KIND_HOST_TO_DEVICE   ? cudaMemcpyHostToDevice
                             : kind == MOME_COPY_KIND_DEVICE_TO_HOST ? cudaMemcpyDeviceToHost
                                                                     : cudaMemcpyDeviceToDevice;
    MOME_CUDA(cudaMemcpy(dst, src, bytes, k));
}

void cuda_synchronize(int device) {
    DeviceScope scope(device);
    MOME_CUDA(cudaDeviceSynchronize());
}

}  // namespace mome
