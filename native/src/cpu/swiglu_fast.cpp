// swiglu_fast: swiglu_ref's result, by the AVX-512 kernel where the CPU has it, in blocks
// over the pool.
#include <algorithm>
#include <cstring>

#include "cpu/matmul_variants.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace mome {

void swiglu_fast(const float* gate, const float* up, int64_t n, float* out, ThreadPool& pool) {
    constexpr int64_t kPerChunk = 16384;  // a prefill's rows split over the threads; a decode step's on the caller
    static const bool avx512 = std::strcmp(matmul_isa(), "avx512") == 0;
    const auto kernel = avx512 ? swiglu_avx512 : swiglu_ref;
    pool.run((n + kPerChunk - 1) / kPerChunk, [&](int64_t chunk) {
        const int64_t i0 = chunk * kPerChunk;
        kernel(gate + i0, up + i0, std::min(n - i0, kPerChunk), out + i0);
    });
}

}  // namespace mome
