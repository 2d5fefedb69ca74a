// ABI: standalone operators over caller buffers.
#include <algorithm>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "core/backend_kind.h"
#include "core/abi_enum.h"
#include "core/error.h"
#include "cpu/shared_pools.h"
#include "gguf/tensor_types.h"

using namespace mome;

extern "C" {

mome_status mome_matmul(const void* weight, mome_tensor_type weight_type, int64_t rows, int64_t cols, const float* x,
                        int64_t n_tokens, float* y, int32_t n_threads, mome_backend backend_kind) {
    return guarded([&] {
        require_arg(weight != nullptr && x != nullptr && y != nullptr, "weight, x or y is null");
        const uint32_t type = static_cast<uint32_t>(abi_enum(weight_type));
        if (!is_compute_type(type))
            fail(MOME_STATUS_UNSUPPORTED, format("weight type %s is not F32, F16 or BF16", tensor_type_name(type).c_str()));
        const int64_t limit = int64_t(1) << 31;
        if (rows < 1 || cols < 1 || n_tokens < 1 || rows > limit || cols > limit || n_tokens > limit)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("matmul shape rows=%lld cols=%lld tokens=%lld: each must be in 1..2^31",
                                                      static_cast<long long>(rows), static_cast<long long>(cols),
                                                      static_cast<long long>(n_tokens)));
        if (n_threads < 0 || n_threads > 1024) fail(MOME_STATUS_INVALID_ARGUMENT, format("n_threads = %d is outside 0..1024", n_threads));
        const bool reference = host_backend(backend_kind, "mome_matmul");
        const Tensor W{static_cast<const uint8_t*>(weight), weight_type, rows, cols};
        const int threads = n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        const std::unique_ptr<Backend> backend = reference ? make_cpu_ref_backend() : make_cpu_fast_backend(shared_pool(threads));
        std::vector<float> out(static_cast<size_t>(n_tokens * rows));
        backend->matmul(W, x, n_tokens, out.data());
        std::copy(out.begin(), out.end(), y);
    });
}

}  // extern "C"
