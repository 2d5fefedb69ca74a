// ABI: models (GGUF files), metadata values, tensors, synthetic models.
#include <cstring>

#include "core/abi_enum.h"
#include "core/abi_struct.h"
#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "model/llama_config.h"
#include "model/model.h"
#include "model/quantize_model.h"
#include "model/synthetic.h"
#include "quant/quant.h"

using namespace mome;

extern "C" {

const char* mome_tensor_type_name(mome_tensor_type type) {
    const TensorTypeTraits* t = tensor_type_traits(static_cast<uint32_t>(abi_enum(type)));
    return t ? t->name : "unknown";
}

}  // extern "C"

namespace {

mome_model_params default_model_params() {
    mome_model_params p = abi_struct<mome_model_params>();
    p.metadata_only = 0;
    return p;
}

}  // namespace

extern "C" {

mome_status mome_model_default_params(mome_model_params* out) {
    return guarded([&] { write_abi_struct(out, default_model_params(), "out is null"); });
}

mome_status mome_model_open(const char* path, const mome_model_params* params_in, mome_model** out) {
    return guarded([&] {
        require_arg(path != nullptr && *path != '\0', "path is null or empty");
        require_arg(out != nullptr, "out is null");
        const mome_model_params params = params_in ? read_abi_struct(params_in, default_model_params(), "params is null")
                                                   : default_model_params();
        auto model = std::make_unique<mome_model>();
        model->file = GgufFile::open(path);
        const GgufValue* arch = model->file->find("general.architecture");
        const bool llama = arch && arch->type == MOME_VALUE_TYPE_STRING && value_as_string(*arch) == "llama";
        if (!params.metadata_only || llama) {
            model->config = read_llama_config(*model->file);
            model->is_llama = true;
        }
        if (!params.metadata_only) check_llama_tensors(*model->file, model->config);
        *out = model.release();
    });
}

void mome_model_free(mome_model* model) { delete model; }

mome_status mome_model_get_config(const mome_model* model, mome_llama_config* out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        if (!model->is_llama)
            fail(MOME_STATUS_UNSUPPORTED, format("%s: not a Llama model", model->file->path().c_str()));
        *out = model->config;
    });
}

mome_status mome_model_get_file_info(const mome_model* model, mome_file_info* out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        mome_file_info info{};
        info.gguf_version = model->file->version();
        info.alignment = model->file->alignment();
        info.file_size = model->file->file_size();
        info.data_offset = model->file->data_offset();
        *out = info;
    });
}

mome_status mome_model_meta_count(const mome_model* model, uint64_t* out_count) {
    return guarded([&] {
        require_arg(model != nullptr && out_count != nullptr, "model or out_count is null");
        *out_count = model->file->meta_count();
    });
}

mome_status mome_model_meta_at(const mome_model* model, uint64_t index, const char** out_key, const mome_value** out_value) {
    return guarded([&] {
        require_arg(model != nullptr && out_key != nullptr && out_value != nullptr, "model, out_key or out_value is null");
        if (index >= model->file->meta_count())
            fail(MOME_STATUS_OUT_OF_RANGE, format("metadata index %llu is past the %zu entries", static_cast<unsigned long long>(index),
                                                  model->file->meta_count()));
        *out_key = model->file->meta_key(index).c_str();
        *out_value = &model->file->meta_value(index);
    });
}

mome_status mome_model_meta_find(const mome_model* model, const char* key, const mome_value** out_value) {
    return guarded([&] {
        require_arg(model != nullptr && key != nullptr && out_value != nullptr, "model, key or out_value is null");
        const GgufValue* v = model->file->find(key);
        if (!v) fail(MOME_STATUS_NOT_FOUND, format("%s: no metadata key '%s'", model->file->path().c_str(), key));
        *out_value = v;
    });
}

mome_status mome_value_get_info(const mome_value* value, mome_value_info* out) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr, "value or out is null");
        mome_value_info info{};
        info.type = value->type;
        info.element_type = value->element_type;
        info.count = value->type == MOME_VALUE_TYPE_STRING ? value->strings[0].size() : value->count;
        *out = info;
    });
}

mome_status mome_value_get_element(const mome_value* value, uint64_t index, const mome_value** out) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr, "value or out is null");
        if (value->type != MOME_VALUE_TYPE_ARRAY || value->element_type != MOME_VALUE_TYPE_ARRAY)
            fail(MOME_STATUS_TYPE_MISMATCH, "value is not an array of arrays; use the typed getters with an index");
        if (index >= value->count)
            fail(MOME_STATUS_OUT_OF_RANGE, format("index %llu is past the end of an array of %llu",
                                                  static_cast<unsigned long long>(index),
                                                  static_cast<unsigned long long>(value->count)));
        *out = &value->arrays[index];
    });
}

mome_status mome_value_get_i64(const mome_value* value, uint64_t index, int64_t* out) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr, "value or out is null");
        *out = value_as_i64(*value, index);
    });
}

mome_status mome_value_get_u64(const mome_value* value, uint64_t index, uint64_t* out) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr, "value or out is null");
        *out = value_as_u64(*value, index);
    });
}

mome_status mome_value_get_f64(const mome_value* value, uint64_t index, double* out) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr, "value or out is null");
        *out = value_as_f64(*value, index);
    });
}

mome_status mome_value_get_bool(const mome_value* value, uint64_t index, uint8_t* out) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr, "value or out is null");
        *out = value_as_bool(*value, index) ? 1 : 0;
    });
}

mome_status mome_value_get_string(const mome_value* value, uint64_t index, const char** out, uint64_t* out_length) {
    return guarded([&] {
        require_arg(value != nullptr && out != nullptr && out_length != nullptr, "value, out or out_length is null");
        const std::string& s = value_as_string(*value, index);
        *out = s.c_str();
        *out_length = s.size();
    });
}

mome_status mome_model_tensor_count(const mome_model* model, uint64_t* out_count) {
    return guarded([&] {
        require_arg(model != nullptr && out_count != nullptr, "model or out_count is null");
        *out_count = model->file->tensors().size();
    });
}

namespace {
const GgufTensor& tensor_at(const mome_model* model, uint64_t index) {
    const auto& tensors = model->file->tensors();
    if (index >= tensors.size())
        fail(MOME_STATUS_OUT_OF_RANGE, format("tensor index %llu is past the %zu tensors", static_cast<unsigned long long>(index),
                                              tensors.size()));
    return tensors[index];
}
}  // namespace

mome_status mome_model_tensor_at(const mome_model* model, uint64_t index, mome_tensor_info* out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        const GgufTensor& t = tensor_at(model, index);
        mome_tensor_info info{};
        info.name = t.name.c_str();
        info.type = static_cast<mome_tensor_type>(t.type);
        info.n_dims = t.n_dims;
        for (int d = 0; d < MOME_MAX_DIMS; ++d) info.ne[d] = t.ne[d];
        info.file_offset = model->file->data_offset() + t.offset;
        info.size_bytes = t.size_bytes;
        *out = info;
    });
}

mome_status mome_model_tensor_find(const mome_model* model, const char* name, uint64_t* out_index) {
    return guarded([&] {
        require_arg(model != nullptr && name != nullptr && out_index != nullptr, "model, name or out_index is null");
        const GgufTensor* t = model->file->find_tensor(name);
        if (!t) fail(MOME_STATUS_NOT_FOUND, format("%s: no tensor named '%s'", model->file->path().c_str(), name));
        *out_index = static_cast<uint64_t>(t - model->file->tensors().data());
    });
}

mome_status mome_model_tensor_read_f32(const mome_model* model, uint64_t index, float* dst, uint64_t count) {
    return guarded([&] {
        require_arg(model != nullptr && dst != nullptr, "model or dst is null");
        const GgufTensor& t = tensor_at(model, index);
        if (count != static_cast<uint64_t>(t.n_elements))
            fail(MOME_STATUS_INVALID_ARGUMENT, format("tensor '%s' has %lld elements, the buffer %llu", t.name.c_str(),
                                                      static_cast<long long>(t.n_elements), static_cast<unsigned long long>(count)));
        const uint8_t* src = model->file->tensor_data(t);
        if (is_quantized_type(t.type)) {
            dequantize_row(t.type, src, t.n_elements, dst);
            return;
        }
        if (!is_compute_type(t.type))
            fail(MOME_STATUS_UNSUPPORTED, format("tensor '%s' has type %s; only F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                                                 "Q4_K, Q5_K and Q6_K can be read", t.name.c_str(), tensor_type_name(t.type).c_str()));
        if (t.type == MOME_TENSOR_TYPE_F32) {
            std::memcpy(dst, src, count * sizeof(float));
            return;
        }
        for (uint64_t i = 0; i < count; ++i) {
            uint16_t h;
            std::memcpy(&h, src + 2 * i, 2);
            dst[i] = t.type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
        }
    });
}

mome_status mome_synthetic_preset(const char* name, mome_synthetic_params* out) {
    return guarded([&] {
        require_arg(name != nullptr && out != nullptr, "name or out is null");
        checked_struct_size(out);
        write_abi_struct(out, synthetic_preset(name), "out is null");
    });
}

mome_status mome_synthetic_write(const mome_synthetic_params* params, const char* path) {
    return guarded([&] {
        const mome_synthetic_params p = read_abi_struct(params, mome_synthetic_params{}, "params is null");
        require_arg(path != nullptr && *path != '\0', "path is null or empty");
        write_synthetic_model(p, path);
    });
}

mome_status mome_model_quantize(const char* src_path, const char* dst_path, mome_tensor_type type) {
    return guarded([&] {
        require_arg(src_path != nullptr && *src_path != '\0', "src_path is null or empty");
        require_arg(dst_path != nullptr && *dst_path != '\0', "dst_path is null or empty");
        quantize_model(src_path, dst_path, type);
    });
}

}  // extern "C"
