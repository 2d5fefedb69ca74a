// Y = X * W^T for a block-quantized W: each token's activations are quantized to the type
// ggml pairs with W's (Q8_0, Q8_1 or Q8_K), then every output is a quantized dot product.
#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/matmul_variants.h"
#include "cpu/thread_pool.h"
#include "quant/quant.h"
#include "quant/quant_unpacked.h"
#include "quant/quant_variants.h"

namespace mome {

namespace {

constexpr int64_t kRowsPerChunk = 16;

std::vector<uint8_t> quantize_tokens(uint32_t act_type, const float* X, int64_t n_tokens, int64_t cols) {
    const int64_t bytes = quant_row_bytes(act_type, cols);
    std::vector<uint8_t> q(static_cast<size_t>(n_tokens * bytes));
    for (int64_t t = 0; t < n_tokens; ++t) quantize_activation_row(act_type, X + t * cols, cols, q.data() + t * bytes);
    return q;
}

}  // namespace

QuantRowsFn quant_rows_best() {
    const char* isa = matmul_isa();
    // Byte-wide integer vectors need AVX-512 BW beside the F (which the F32 kernels need).
    static const bool has_bw = (__builtin_cpu_init(), __builtin_cpu_supports("avx512bw"));
    if (std::strcmp(isa, "avx512") == 0 && has_bw) return quant_rows_avx512;
    if (std::strcmp(isa, "avx512") == 0 || std::strcmp(isa, "avx2") == 0) return quant_rows_avx2;
    return quant_rows_portable;
}

void quant_matmul_ref(const Tensor& W, const float* X, int64_t n_tokens, float* Y, const std::vector<int64_t>& calls) {
    const uint32_t act_type = activation_type_for(W.type);
    const int64_t w_bytes = quant_row_bytes(W.type, W.cols), a_bytes = quant_row_bytes(act_type, W.cols);
    const std::vector<uint8_t> acts = quantize_tokens(act_type, X, n_tokens, W.cols);
    const std::vector<QuantKernel> kernels = quant_kernels_for(W.type, W.rows, n_tokens, calls);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < W.rows; ++r)
            Y[t * W.rows + r] = quant_dot_ref(W.type, kernels[static_cast<size_t>(t)], W.data + r * w_bytes, acts.data() + t * a_bytes, W.cols);
}

void quant_matmul_fast(const Tensor& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool, const std::vector<int64_t>& calls) {
    const uint32_t act_type = activation_type_for(W.type);
    const int64_t w_bytes = quant_row_bytes(W.type, W.cols), a_bytes = quant_row_bytes(act_type, W.cols);
    const std::vector<uint8_t> quantized = quantize_tokens(act_type, X, n_tokens, W.cols);
    std::vector<UnpackedRow> acts(static_cast<size_t>(n_tokens));
    for (int64_t t = 0; t < n_tokens; ++t)
        unpack_activation_row(act_type, quantized.data() + t * a_bytes, W.cols, acts[static_cast<size_t>(t)]);
    const std::vector<QuantKernel> kernels = quant_kernels_for(W.type, W.rows, n_tokens, calls);
    const QuantRowsFn rows = quant_rows_best();
    const int64_t n_chunks = (W.rows + kRowsPerChunk - 1) / kRowsPerChunk;
    pool.run(n_chunks, [&](int64_t chunk) {
        const int64_t r0 = chunk * kRowsPerChunk;
        rows(W.type, W.data, w_bytes, W.rows, W.cols, acts, kernels, Y, r0, std::min(W.rows, r0 + kRowsPerChunk));
    });
}

}  // namespace mome
