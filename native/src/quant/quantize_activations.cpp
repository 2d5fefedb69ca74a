// Activations -> Q8_0 / Q8_1 / Q8_K blocks, rounding exactly as ggml's x86 CPU backend does:
// Q8_0 and Q8_1 take its AVX path (scale max|x| / 127, multiplier 127 / max|x|, round to
// nearest even); Q8_K its reference (multiplier -127 / x_max where x_max is the first element
// of largest magnitude, round to nearest even, clamp at 127, F32 scale 1 / multiplier).
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"

namespace mome {

namespace {

// Rounds to nearest even and saturates to int8. A NaN (from a NaN or infinite activation)
// becomes -128, as ggml's AVX conversion makes it, and never reaches a float-to-int cast,
// which for NaN is undefined behaviour.
int8_t round_to_int8(float v) {
    const float r = std::nearbyint(v);
    if (!(r >= -128.0f)) return -128;
    return static_cast<int8_t>(r < 127.0f ? r : 127.0f);
}

// Returns the F32 scale; writes the 32 quants.
float quantize_block_32(const float* x, int8_t* qs) {
    float max_abs = 0;
    for (int j = 0; j < kQK; ++j) max_abs = std::fmax(max_abs, std::fabs(x[j]));
    const float d = max_abs / 127.0f;
    const float id = max_abs != 0.0f ? 127.0f / max_abs : 0.0f;
    for (int j = 0; j < kQK; ++j) qs[j] = round_to_int8(x[j] * id);
    return d;
}

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* y) {
    for (int64_t i = 0; i < n / kQK; ++i) y[i].d = float_to_f16(quantize_block_32(x + i * kQK, y[i].qs));
}

void quantize_q8_1(const float* x, int64_t n, BlockQ8_1* y) {
    for (int64_t i = 0; i < n / kQK; ++i) {
        const float d = quantize_block_32(x + i * kQK, y[i].qs);
        int sum = 0;
        for (int j = 0; j < kQK; ++j) sum += y[i].qs[j];
        y[i].d = float_to_f16(d);
        y[i].s = float_to_f16(d * static_cast<float>(sum));
    }
}

void quantize_q8_k(const float* x, int64_t n, BlockQ8_K* y) {
    for (int64_t i = 0; i < n / kQK_K; ++i, x += kQK_K) {
        BlockQ8_K& b = y[i];
        float max = 0, max_abs = 0;
        for (int j = 0; j < kQK_K; ++j)
            if (std::fabs(x[j]) > max_abs) {
                max_abs = std::fabs(x[j]);
                max = x[j];
            }
        if (max_abs == 0) {
            std::memset(&b, 0, sizeof b);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < kQK_K; ++j) b.qs[j] = round_to_int8(iscale * x[j]);
        for (int g = 0; g < kQK_K / 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
            b.bsums[g] = static_cast<int16_t>(sum);
        }
        b.d = 1 / iscale;
    }
}

}  // namespace

void quantize_activation_row(uint32_t act_type, const float* x, int64_t n, uint8_t* dst) {
    quant_row_bytes(act_type, n);
    switch (act_type) {
    case MOME_TENSOR_TYPE_Q8_0: return quantize_q8_0(x, n, reinterpret_cast<BlockQ8_0*>(dst));
    case MOME_TENSOR_TYPE_Q8_1: return quantize_q8_1(x, n, reinterpret_cast<BlockQ8_1*>(dst));
    case MOME_TENSOR_TYPE_Q8_K: return quantize_q8_k(x, n, reinterpret_cast<BlockQ8_K*>(dst));
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("%s is not an activation type (Q8_0, Q8_1 or Q8_K)", tensor_type_name(act_type).c_str()));
    }
}

}  // namespace mome
