// ABI: version, errors, logging, cancellation, build information and devices.
#include <cstring>

#include "core/abi_enum.h"
#include "core/abort.h"
#include "core/devices.h"
#include "core/error.h"
#include "core/log.h"
#include "mome.h"

using namespace mome;

extern "C" {

uint32_t mome_abi_version(void) { return MOME_ABI_VERSION; }

const char* mome_version(void) { return MOME_VERSION_STRING; }

const char* mome_last_error(void) { return last_error(); }

const char* mome_status_to_string(mome_status status) {
    switch (abi_enum(status)) {
        case MOME_STATUS_OK: return "ok";
        case MOME_STATUS_INVALID_ARGUMENT: return "invalid argument";
        case MOME_STATUS_IO_ERROR: return "I/O error";
        case MOME_STATUS_FORMAT_ERROR: return "format error";
        case MOME_STATUS_UNSUPPORTED: return "unsupported";
        case MOME_STATUS_NOT_FOUND: return "not found";
        case MOME_STATUS_TYPE_MISMATCH: return "type mismatch";
        case MOME_STATUS_OUT_OF_RANGE: return "out of range";
        case MOME_STATUS_OUT_OF_MEMORY: return "out of memory";
        case MOME_STATUS_BACKEND_ERROR: return "backend error";
        case MOME_STATUS_INTERNAL_ERROR: return "internal error";
        case MOME_STATUS_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void mome_set_log_callback(mome_log_callback callback, void* user_data) { set_log_callback(callback, user_data); }

void mome_set_abort_callback(mome_abort_callback callback, void* user_data) { t_abort_hook = AbortHook{callback, user_data}; }

mome_status mome_get_build_info(mome_build_info* out) {
    return guarded([&] {
        require_arg(out != nullptr, "out is null");
        mome_build_info info{};
        info.cuda_runtime_version = cuda_runtime_version();
        info.has_cuda = info.cuda_runtime_version != 0;
        __builtin_cpu_init();
        info.cpu_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
        info.cpu_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
        *out = info;
    });
}

mome_status mome_device_count(int32_t* out_count) {
    return guarded([&] {
        require_arg(out_count != nullptr, "out_count is null");
        *out_count = 1 + static_cast<int32_t>(cuda_devices().size());
    });
}

mome_status mome_device_get_info(int32_t index, mome_device_info* out) {
    return guarded([&] {
        require_arg(out != nullptr, "out is null");
        if (index == 0) {
            *out = cpu_device_info();
            return;
        }
        const std::vector<mome_device_info> gpus = cuda_devices();
        if (index < 0 || index > static_cast<int32_t>(gpus.size()))
            fail(MOME_STATUS_OUT_OF_RANGE, format("device %d does not exist (%zu devices)", index, gpus.size() + 1));
        *out = gpus[static_cast<size_t>(index - 1)];
    });
}

}  // extern "C"
