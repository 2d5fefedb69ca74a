#include "gguf/tensor_types.h"

#include "core/error.h"

namespace mome {

namespace {
// Block sizes from ggml's type traits (QK_K = 256).
struct Entry {
    uint32_t id;
    TensorTypeTraits traits;
};
constexpr Entry kTypes[] = {
    {MOME_TENSOR_TYPE_F32, {"F32", 1, 4}},       {MOME_TENSOR_TYPE_F16, {"F16", 1, 2}},
    {MOME_TENSOR_TYPE_Q4_0, {"Q4_0", 32, 18}},   {MOME_TENSOR_TYPE_Q4_1, {"Q4_1", 32, 20}},
    {MOME_TENSOR_TYPE_Q5_0, {"Q5_0", 32, 22}},   {MOME_TENSOR_TYPE_Q5_1, {"Q5_1", 32, 24}},
    {MOME_TENSOR_TYPE_Q8_0, {"Q8_0", 32, 34}},   {MOME_TENSOR_TYPE_Q8_1, {"Q8_1", 32, 36}},
    {MOME_TENSOR_TYPE_Q2_K, {"Q2_K", 256, 84}},  {MOME_TENSOR_TYPE_Q3_K, {"Q3_K", 256, 110}},
    {MOME_TENSOR_TYPE_Q4_K, {"Q4_K", 256, 144}}, {MOME_TENSOR_TYPE_Q5_K, {"Q5_K", 256, 176}},
    {MOME_TENSOR_TYPE_Q6_K, {"Q6_K", 256, 210}}, {MOME_TENSOR_TYPE_Q8_K, {"Q8_K", 256, 292}},
    {16, {"IQ2_XXS", 256, 66}},                  {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}},                  {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},                    {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},                    {23, {"IQ4_XS", 256, 136}},
    {MOME_TENSOR_TYPE_I8, {"I8", 1, 1}},         {MOME_TENSOR_TYPE_I16, {"I16", 1, 2}},
    {MOME_TENSOR_TYPE_I32, {"I32", 1, 4}},       {MOME_TENSOR_TYPE_I64, {"I64", 1, 8}},
    {MOME_TENSOR_TYPE_F64, {"F64", 1, 8}},       {29, {"IQ1_M", 256, 56}},
    {MOME_TENSOR_TYPE_BF16, {"BF16", 1, 2}},     {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},                    {39, {"MXFP4", 32, 17}},
};
}  // namespace

const TensorTypeTraits* tensor_type_traits(uint32_t type) {
    for (const Entry& e : kTypes)
        if (e.id == type) return &e.traits;
    return nullptr;
}

std::string tensor_type_name(uint32_t type) {
    const TensorTypeTraits* t = tensor_type_traits(type);
    return t ? t->name : format("unknown type %u", type);
}

}  // namespace mome
