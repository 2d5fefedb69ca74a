// ggml tensor types: how many bytes a row of n elements takes, and their names.
#pragma once

#include <cstdint>
#include <string>

#include "mome.h"

namespace mome {

struct TensorTypeTraits {
    const char* name;
    int64_t block_size;  // elements per block
    int64_t type_size;   // bytes per block
};

// Null for ids that are not ggml types (or were removed from ggml).
const TensorTypeTraits* tensor_type_traits(uint32_t type);

inline bool is_compute_type(uint32_t type) {
    return type == MOME_TENSOR_TYPE_F32 || type == MOME_TENSOR_TYPE_F16 ||
           type == MOME_TENSOR_TYPE_BF16;
}

std::string tensor_type_name(uint32_t type);

}  // namespace mome
