// Fast Y = X * W^T: picks the widest kernel the CPU supports (once) and spreads blocks of
// rows over the thread pool. Checked against matmul_ref in tests/native/ops_test.cpp.
#include <algorithm>
#include <cpuid.h>
#include <cstdlib>
#include <cstring>

#include "cpu/matmul_variants.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"
#include "quant/quant.h"

namespace mome {

namespace {

constexpr int64_t kRowsPerChunk = 32;
// A one-token product's rows come in one run per thread (at least 128 rows): each thread's
// stream, and its prefetch, which stops at the run's end, stays sequential.
constexpr int64_t kDecodeMinRowsPerChunk = 128;

int64_t decode_rows_per_chunk(int64_t rows, int threads) {
    const int64_t per_thread = (rows + threads - 1) / threads;
    return std::max(kDecodeMinRowsPerChunk, (per_thread + 15) / 16 * 16);
}

using RowsFn = void (*)(const Tensor&, const float*, int64_t, float*, int64_t, int64_t);

struct Variant {
    const char* name;
    RowsFn rows;
    AxpyRowFn axpy;
    ScoreKeysFn score_keys;
    BackwardInputFn backward_input;
    void (*round)(mome_tensor_type, const float*, float*, int64_t);
    FindAboveFn find_above;
};

// F16C through CPUID leaf 1: clang's __builtin_cpu_supports (as of clang 14) does not know
// "f16c", and the core must build with clang for the fuzz harnesses.
bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}

Variant pick_variant() {
    __builtin_cpu_init();
    // MOME_CPU_ISA=avx2|portable forces a narrower variant (to test or compare them); avx512,
    // avx512bf16 and amx keep AVX-512 (they choose the router's screening, cpu/screen.h).
    const char* forced = std::getenv("MOME_CPU_ISA");
    const bool allow512 = !forced || std::strcmp(forced, "avx512") == 0 || std::strcmp(forced, "avx512bf16") == 0 ||
                          std::strcmp(forced, "amx") == 0;
    const bool allow2 = allow512 || std::strcmp(forced, "avx2") == 0;
    if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        return {"avx512", matmul_rows_avx512, axpy_row_avx512, score_keys_avx512, backward_input_block_avx512, round_activations_avx512,
                find_above_avx512};
    if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
        return {"avx2", matmul_rows_avx2, axpy_row_avx2, score_keys_avx2, backward_input_block_avx2, round_activations_avx2,
                find_above_avx2};
    return {"portable", matmul_rows_portable, axpy_row_portable, score_keys_portable, backward_input_block_portable,
            round_activations_portable, find_above_portable};
}

const Variant& variant() {
    static const Variant v = pick_variant();
    return v;
}

}  // namespace

const char* matmul_isa() { return variant().name; }
MatmulRowsFn matmul_rows_best() { return variant().rows; }
AxpyRowFn axpy_row_best() { return variant().axpy; }
ScoreKeysFn score_keys_best() { return variant().score_keys; }
BackwardInputFn backward_input_block_best() { return variant().backward_input; }
FindAboveFn find_above_best() { return variant().find_above; }

void round_activations_fast(mome_tensor_type weight_type, const float* src, float* dst, int64_t n, ThreadPool& pool) {
    constexpr int64_t kPerChunk = 16384;  // a prefill's rows split over the threads; a decode row on the caller
    const auto round = variant().round;
    pool.run((n + kPerChunk - 1) / kPerChunk, [&](int64_t chunk) {
        const int64_t i0 = chunk * kPerChunk;
        round(weight_type, src + i0, dst + i0, std::min(n - i0, kPerChunk));
    });
}

void matmul_fast(const Tensor& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool, const std::vector<int64_t>& calls) {
    if (is_quantized_type(W.type)) return quant_matmul_fast(W, X, n_tokens, Y, pool, calls);
    const RowsFn rows = variant().rows;
    const int64_t per_chunk = n_tokens == 1 ? decode_rows_per_chunk(W.rows, pool.size()) : kRowsPerChunk;
    const int64_t n_chunks = (W.rows + per_chunk - 1) / per_chunk;
    pool.run(n_chunks, [&](int64_t chunk) {
        const int64_t r0 = chunk * per_chunk;
        rows(W, X, n_tokens, Y, r0, std::min(W.rows, r0 + per_chunk));
    });
}

}  // namespace mome
