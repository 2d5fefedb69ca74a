#include "gguf/gguf_writer.h"

#include <cstring>

#include "core/atomic_file.h"
#include "core/error.h"
#include "gguf/tensor_types.h"

namespace mome {

template <typename T>
void GgufWriter::put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    kv_.insert(kv_.end(), p, p + sizeof(T));
}

void GgufWriter::put_string(const std::string& s) {
    put<uint64_t>(s.size());
    kv_.insert(kv_.end(), s.begin(), s.end());
}

void GgufWriter::begin_entry(const std::string& key, mome_value_type type) {
    put_string(key);
    put<uint32_t>(type);
    ++n_kv_;
}

void GgufWriter::set_u32(const std::string& key, uint32_t v) { begin_entry(key, MOME_VALUE_TYPE_UINT32); put(v); }
void GgufWriter::set_i32(const std::string& key, int32_t v) { begin_entry(key, MOME_VALUE_TYPE_INT32); put(v); }
void GgufWriter::set_u64(const std::string& key, uint64_t v) { begin_entry(key, MOME_VALUE_TYPE_UINT64); put(v); }
void GgufWriter::set_f32(const std::string& key, float v) { begin_entry(key, MOME_VALUE_TYPE_FLOAT32); put(v); }
void GgufWriter::set_bool(const std::string& key, bool v) { begin_entry(key, MOME_VALUE_TYPE_BOOL); put<uint8_t>(v ? 1 : 0); }
void GgufWriter::set_string(const std::string& key, const std::string& v) { begin_entry(key, MOME_VALUE_TYPE_STRING); put_string(v); }

void GgufWriter::set_string_array(const std::string& key, const std::vector<std::string>& v) {
    begin_entry(key, MOME_VALUE_TYPE_ARRAY);
    put<uint32_t>(MOME_VALUE_TYPE_STRING);
    put<uint64_t>(v.size());
    for (const std::string& s : v) put_string(s);
}

void GgufWriter::set_f32_array(const std::string& key, const std::vector<float>& v) {
    begin_entry(key, MOME_VALUE_TYPE_ARRAY);
    put<uint32_t>(MOME_VALUE_TYPE_FLOAT32);
    put<uint64_t>(v.size());
    for (float x : v) put(x);
}

void GgufWriter::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
    begin_entry(key, MOME_VALUE_TYPE_ARRAY);
    put<uint32_t>(MOME_VALUE_TYPE_INT32);
    put<uint64_t>(v.size());
    for (int32_t x : v) put(x);
}

void GgufWriter::put_value_body(const GgufValue& v) {
    if (v.type == MOME_VALUE_TYPE_STRING) {
        put_string(v.strings.at(0));
    } else if (v.type == MOME_VALUE_TYPE_ARRAY) {
        put<uint32_t>(v.element_type);
        put<uint64_t>(v.count);
        if (v.element_type == MOME_VALUE_TYPE_STRING)
            for (const std::string& s : v.strings) put_string(s);
        else if (v.element_type == MOME_VALUE_TYPE_ARRAY)
            for (const GgufValue& a : v.arrays) put_value_body(a);
        else
            kv_.insert(kv_.end(), v.raw, v.raw + v.count * gguf_scalar_size(v.element_type));
    } else {
        kv_.insert(kv_.end(), v.raw, v.raw + gguf_scalar_size(v.type));
    }
}

void GgufWriter::set_value(const std::string& key, const GgufValue& v) {
    begin_entry(key, v.type);
    put_value_body(v);
}

void GgufWriter::add_tensor(const std::string& name, mome_tensor_type type, const std::vector<int64_t>& ne, Fill fill) {
    const TensorTypeTraits* traits = tensor_type_traits(type);
    if (!traits || ne.empty() || ne.size() > MOME_MAX_DIMS)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("tensor '%s': bad type or rank", name.c_str()));
    int64_t n = 1;
    for (int64_t d : ne) {
        if (d <= 0) fail(MOME_STATUS_INVALID_ARGUMENT, format("tensor '%s': dimension %lld", name.c_str(), static_cast<long long>(d)));
        n *= d;
    }
    const uint64_t size = static_cast<uint64_t>(n / traits->block_size * traits->type_size);
    tensors_.push_back(Tensor{name, type, ne, size, std::move(fill)});
}

void GgufWriter::write(const std::string& path) const {
    const uint32_t alignment = 32;
    AtomicFileWriter out(path);
    const uint32_t version = 3;
    const uint64_t n_tensors = tensors_.size();
    out.write("GGUF", 4);
    out.write(&version, 4);
    out.write(&n_tensors, 8);
    out.write(&n_kv_, 8);
    out.write(kv_.data(), kv_.size());

    uint64_t offset = 0;
    for (const Tensor& t : tensors_) {
        const uint64_t name_len = t.name.size();
        const uint32_t n_dims = static_cast<uint32_t>(t.ne.size());
        const uint32_t type = t.type;
        out.write(&name_len, 8);
        out.write(t.name.data(), t.name.size());
        out.write(&n_dims, 4);
        for (int64_t d : t.ne) out.write(&d, 8);
        out.write(&type, 4);
        out.write(&offset, 8);
        offset += (t.size_bytes + alignment - 1) / alignment * alignment;
    }

    std::vector<uint8_t> buffer;
    for (const Tensor& t : tensors_) {
        out.pad_to(alignment);
        buffer.assign(t.size_bytes, 0);
        t.fill(buffer.data());
        out.write(buffer.data(), buffer.size());
    }
    out.pad_to(alignment);
    out.commit();
}

}  // namespace mome
