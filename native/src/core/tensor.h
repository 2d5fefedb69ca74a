// The one tensor view of the engine: a row-major [rows x cols] table of one element type
// (F32, F16, BF16 or a block-quantized GGUF type) on one device. A view owns nothing: model
// weights point into the mapped GGUF file, bank tables into the bank's memory or its mapped
// file, device tensors into memory a backend allocated.
#pragma once

#include <cstdint>

#include "mome.h"

namespace mome {

enum class Device { Host, Cuda };

struct Tensor {
    const uint8_t* data = nullptr;
    mome_tensor_type type = MOME_TENSOR_TYPE_F32;
    int64_t rows = 0;
    int64_t cols = 0;  // GGUF's ne[0]: the elements of one row
    Device device = Device::Host;

    int64_t elements() const { return rows * cols; }
    const float* f32() const { return reinterpret_cast<const float*>(data); }
};

// Element (row, col) of an F32, F16 or BF16 tensor on the host, as F32.
float weight_at(const Tensor& m, int64_t row, int64_t col);

}  // namespace mome
