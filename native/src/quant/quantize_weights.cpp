// F32 weights -> Q8_0 / Q4_0 blocks with llama.cpp's reference rounding (no importance
// matrix), so a file Mome quantizes holds the same bytes as one llama.cpp quantizes:
//  - Q8_0: d = max|x| / 127, q = round(x / d) (half away from zero);
//  - Q4_0: d = x_max / -8 where x_max is the first element of largest magnitude,
//    q = min(15, trunc(x / d + 8.5)).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"

namespace mome {

namespace {

void quantize_q8_0(const float* x, BlockQ8_0& b) {
    float max_abs = 0;
    for (int j = 0; j < kQK; ++j) max_abs = std::fmax(max_abs, std::fabs(x[j]));
    const float d = max_abs / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b.d = float_to_f16(d);
    for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
}

void quantize_q4_0(const float* x, BlockQ4_0& b) {
    float max_abs = 0, max = 0;
    for (int j = 0; j < kQK; ++j)
        if (max_abs < std::fabs(x[j])) {
            max_abs = std::fabs(x[j]);
            max = x[j];
        }
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    b.d = float_to_f16(d);
    for (int j = 0; j < kQK / 2; ++j) {
        const float x0 = x[j] * id, x1 = x[j + kQK / 2] * id;
        const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f)));
        const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f)));
        b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
}

}  // namespace

void quantize_weight_row(uint32_t type, const float* x, int64_t n, uint8_t* dst) {
    quant_row_bytes(type, n);
    for (int64_t i = 0; i < n / kQK; ++i) {
        if (type == MOME_TENSOR_TYPE_Q8_0) quantize_q8_0(x + i * kQK, reinterpret_cast<BlockQ8_0*>(dst)[i]);
        else if (type == MOME_TENSOR_TYPE_Q4_0) quantize_q4_0(x + i * kQK, reinterpret_cast<BlockQ4_0*>(dst)[i]);
        else fail(MOME_STATUS_UNSUPPORTED, format("Mome quantizes weights to Q8_0 and Q4_0, not %s", tensor_type_name(type).c_str()));
    }
}

}  // namespace mome
