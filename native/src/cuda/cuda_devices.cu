// CUDA device enumeration. Every runtime call is checked; a machine without a driver or GPU
// simply has no CUDA devices.
#include <cuda_runtime.h>

#include <cstring>

#include "core/devices.h"

namespace mome {

std::vector<mome_device_info> cuda_devices() {
    std::vector<mome_device_info> devices;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "no driver" error for later callers
        return devices;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        mome_device_info info{};
        info.backend = MOME_BACKEND_CUDA;
        info.index = i;
        std::strncpy(info.name, prop.name, MOME_DEVICE_NAME_SIZE - 1);
        info.total_memory = prop.totalGlobalMem;
        info.compute_units = prop.multiProcessorCount;
        info.compute_capability_major = prop.major;
        info.compute_capability_minor = prop.minor;
        devices.push_back(info);
    }
    return devices;
}

int cuda_runtime_version() { return CUDART_VERSION; }

}  // namespace mome
