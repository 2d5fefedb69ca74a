#include "core/backend_kind.h"

#include "core/abi_enum.h"
#include "core/error.h"

namespace mome {

void check_backend(const mome_backend& backend, int32_t device) {
    const int32_t b = abi_enum(backend);
    if (b != MOME_BACKEND_CPU && b != MOME_BACKEND_CPU_REFERENCE && b != MOME_BACKEND_CUDA)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("unknown backend %d (CPU 0, CUDA 1, CPU_REFERENCE 2)", b));
    if (b == MOME_BACKEND_CUDA && (device < 0 || device > 1023))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("device = %d is not a CUDA device index", device));
    if (b != MOME_BACKEND_CUDA && device != 0)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("device = %d: the CPU backends have device 0 only", device));
}

bool host_backend(const mome_backend& backend, const char* call) {
    check_backend(backend, 0);
    if (is_cuda(backend)) fail(MOME_STATUS_UNSUPPORTED, format("%s runs over host buffers: the CUDA backend is not one of its backends", call));
    return abi_enum(backend) == MOME_BACKEND_CPU_REFERENCE;
}

bool is_cuda(const mome_backend& backend) { return abi_enum(backend) == MOME_BACKEND_CUDA; }

}  // namespace mome
