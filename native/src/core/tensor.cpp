#include "core/tensor.h"

#include <cstring>

#include "core/half.h"

namespace mome {

float weight_at(const Tensor& m, int64_t row, int64_t col) {
    const int64_t i = row * m.cols + col;
    if (m.type == MOME_TENSOR_TYPE_F32) {
        float x;
        std::memcpy(&x, m.data + 4 * i, 4);
        return x;
    }
    uint16_t h;
    std::memcpy(&h, m.data + 2 * i, 2);
    return m.type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
}

}  // namespace mome
