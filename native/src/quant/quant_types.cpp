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

QuantKernel quant_kernel_for(uint32_t weight_type, int64_t rows, int64_t token, int64_t n_tokens) {
    const bool repacked = (weight_type == MOME_TENSOR_TYPE_Q4_0 || weight_type == MOME_TENSOR_TYPE_Q4_K) && rows % 8 == 0;
    if (!repacked) return QuantKernel::vec_dot;
    return token < n_tokens - n_tokens % 4 ? QuantKernel::gemm : QuantKernel::gemv;
}

std::vector<QuantKernel> quant_kernels_for(uint32_t weight_type, int64_t rows, int64_t n_tokens, const std::vector<int64_t>& calls) {
    std::vector<QuantKernel> kernels;
    kernels.reserve(static_cast<size_t>(n_tokens));
    const std::vector<int64_t> one{n_tokens};
    for (const int64_t len : calls.empty() ? one : calls) {
        require_arg(len > 0, "every call of a batch has a token");
        for (int64_t t = 0; t < len; ++t) kernels.push_back(quant_kernel_for(weight_type, rows, t, len));
    }
    require_arg(static_cast<int64_t>(kernels.size()) == n_tokens, "the calls of a batch add up to its tokens");
    return kernels;
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
