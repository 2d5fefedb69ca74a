#include "core/error.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"

namespace mome {

bool is_quantized_type(uint32_t type) {
    switch (type) {
    case MOME_TENSOR_TYPE_Q4_0: case MOME_TENSOR_TYPE_Q4_1: case MOME_TENSOR_TYPE_Q5_0: case MOME_TENSOR_TYPE_Q5_1:
    case MOME_TENSOR_TYPE_Q8_0: case MOME_TENSOR_TYPE_Q4_K: case MOME_TENSOR_TYPE_Q5_K: case MOME_TENSOR_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

uint32_t activation_type_for(uint32_t weight_type) {
    switch (weight_type) {
    case MOME_TENSOR_TYPE_Q4_0: case MOME_TENSOR_TYPE_Q5_0: case MOME_TENSOR_TYPE_Q8_0:
        return MOME_TENSOR_TYPE_Q8_0;
    case MOME_TENSOR_TYPE_Q4_1: case MOME_TENSOR_TYPE_Q5_1:
        return MOME_TENSOR_TYPE_Q8_1;
    case MOME_TENSOR_TYPE_Q4_K: case MOME_TENSOR_TYPE_Q5_K: case MOME_TENSOR_TYPE_Q6_K:
        return MOME_TENSOR_TYPE_Q8_K;
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("tensor type %s has no quantized dot product in Mome", tensor_type_name(weight_type).c_str()));
    }
}

int64_t quant_row_bytes(uint32_t type, int64_t n) {
    const TensorTypeTraits* t = tensor_type_traits(type);
    if (!t) fail(MOME_STATUS_UNSUPPORTED, format("unknown tensor type %u", type));
    if (n % t->block_size != 0)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("a row of %lld elements is not a multiple of the %s block size %lld",
                                                  static_cast<long long>(n), t->name, static_cast<long long>(t->block_size)));
    return n / t->block_size * t->type_size;
}

}  // namespace mome
