// Device enumeration: the CPU is device 0, CUDA devices (when built in and present) follow.
#pragma once

#include <vector>

#include "mome.h"

namespace mome {

mome_device_info cpu_device_info();

// CUDA devices visible to this process; empty without a CUDA build, driver or GPU.
std::vector<mome_device_info> cuda_devices();

// CUDA runtime version compiled against, 0 without CUDA.
int cuda_runtime_version();

}  // namespace mome
