// The ABI's one way to name where work runs: a mome_backend and a device index, checked here
// for every call and params struct that takes them.
#pragma once

#include <cstdint>

#include "mome.h"

namespace mome {

// Refuses a value that is no mome_backend, and a device index the backend cannot have
// (the CPU backends have device 0 only). Enums are taken by reference and read as integers
// (core/abi_enum.h): a value outside the enum must not be loaded as one.
void check_backend(const mome_backend& backend, int32_t device);

// For calls over host buffers: true for MOME_BACKEND_CPU_REFERENCE, false for MOME_BACKEND_CPU,
// MOME_STATUS_UNSUPPORTED naming `call` for CUDA.
bool host_backend(const mome_backend& backend, const char* call);

bool is_cuda(const mome_backend& backend);

}  // namespace mome
