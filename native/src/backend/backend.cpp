#include "backend/backend.h"

namespace mome {

const char* op_name(Op op) {
    switch (op) {
        case Op::Embed: return "embed";
        case Op::Add: return "add";
        case Op::Scale: return "scale";
        case Op::GatherRows: return "gather_rows";
        case Op::ScatterRows: return "scatter_rows";
        case Op::ArgmaxRows: return "argmax_rows";
        case Op::RmsNorm: return "rms_norm";
        case Op::Rope: return "rope";
        case Op::Matmul: return "matmul";
        case Op::StoreKv: return "store_kv";
        case Op::Attention: return "attention";
        case Op::Swiglu: return "swiglu";
        case Op::LoraApply: return "lora_apply";
        case Op::RmsNormBackward: return "rms_norm_backward";
        case Op::MatmulBackwardInput: return "matmul_backward_input";
        case Op::RopeBackward: return "rope_backward";
        case Op::AttentionBackward: return "attention_backward";
        case Op::SwigluBackward: return "swiglu_backward";
        case Op::CrossEntropyBackward: return "cross_entropy_backward";
        case Op::LoraBackward: return "lora_backward";
        case Op::MatmulBackwardWeight: return "matmul_backward_weight";
        case Op::RmsNormBackwardWeight: return "rms_norm_backward_weight";
        case Op::EmbedBackward: return "embed_backward";
    }
    return "?";
}

bool backend_kind_supports_type(mome_backend kind, mome_tensor_type type) {
    if (kind == MOME_BACKEND_CUDA) return type == MOME_TENSOR_TYPE_F32 || type == MOME_TENSOR_TYPE_F16 || type == MOME_TENSOR_TYPE_BF16;
    return true;
}

Buffer floats(Backend& backend, int64_t n, bool zero) {
    Buffer b(backend, static_cast<uint64_t>(std::max<int64_t>(n, 1)) * sizeof(float));
    if (zero && n > 0) backend.zero(b.as<void>(), static_cast<uint64_t>(n) * sizeof(float));
    return b;
}

}  // namespace mome
