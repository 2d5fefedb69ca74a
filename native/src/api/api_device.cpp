// ABI: device memory of a backend. The CPU backends' device memory is aligned host memory;
// CUDA's comes from the CUDA backend (core/cuda_backend.h).
#include <cstdlib>
#include <cstring>

#include "core/backend_kind.h"
#include "core/cuda_backend.h"
#include "core/error.h"

using namespace mome;

namespace {

constexpr uint64_t kHostAlignment = 64;

void check_copy_kind(mome_copy_kind kind) {
    if (kind != MOME_COPY_KIND_HOST_TO_DEVICE && kind != MOME_COPY_KIND_DEVICE_TO_HOST && kind != MOME_COPY_KIND_DEVICE_TO_DEVICE)
        fail(MOME_STATUS_INVALID_ARGUMENT, "unknown copy kind");
}

}  // namespace

extern "C" {

mome_status mome_device_alloc(mome_backend backend, int32_t device, uint64_t bytes, void** out) {
    return guarded([&] {
        require_arg(out != nullptr, "out is null");
        require_arg(bytes > 0, "cannot allocate 0 bytes");
        check_backend(backend, device);
        if (is_cuda(backend)) {
            *out = cuda_alloc(device, bytes);
            return;
        }
        const uint64_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
        void* p = rounded >= bytes ? std::aligned_alloc(kHostAlignment, rounded) : nullptr;
        if (!p) fail(MOME_STATUS_OUT_OF_MEMORY, format("cannot allocate %llu bytes of host memory", static_cast<unsigned long long>(bytes)));
        *out = p;
    });
}

mome_status mome_device_free(mome_backend backend, void* ptr) {
    return guarded([&] {
        check_backend(backend, 0);
        if (!ptr) return;
        if (is_cuda(backend)) cuda_free(ptr);
        else std::free(ptr);
    });
}

mome_status mome_device_copy(mome_backend backend, void* dst, const void* src, uint64_t bytes, mome_copy_kind kind) {
    return guarded([&] {
        require_arg(dst != nullptr && src != nullptr, "dst or src is null");
        check_backend(backend, 0);
        check_copy_kind(kind);
        if (!bytes) return;
        if (is_cuda(backend)) cuda_copy(dst, src, bytes, kind);
        else std::memmove(dst, src, bytes);
    });
}

mome_status mome_device_synchronize(mome_backend backend, int32_t device) {
    return guarded([&] {
        check_backend(backend, device);
        if (is_cuda(backend)) cuda_synchronize(device);
    });
}

}  // extern "C"
