// GGUF v3 writer: metadata, tensor infos, then aligned tensor data, written atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "mome.h"

namespace mome {

class GgufWriter {
public:
    void set_u32(const std::string& key, uint32_t v);
    void set_i32(const std::string& key, int32_t v);
    void set_u64(const std::string& key, uint64_t v);
    void set_f32(const std::string& key, float v);
    void set_bool(const std::string& key, bool v);
    void set_string(const std::string& key, const std::string& v);
    void set_string_array(const std::string& key, const std::vector<std::string>& v);
    void set_f32_array(const std::string& key, const std::vector<float>& v);
    void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
    // A value read from another GGUF file, copied as it is (any type, nested arrays too).
    void set_value(const std::string& key, const GgufValue& v);

    // `fill` writes the tensor's size_bytes into the buffer it is given when the file is
    // written, so large models are produced one tensor at a time.
    using Fill = std::function<void(uint8_t* dst)>;
    void add_tensor(const std::string& name, mome_tensor_type type, const std::vector<int64_t>& ne, Fill fill);

    // Tensor data is aligned to GGUF's default of 32 bytes (no general.alignment key).
    void write(const std::string& path) const;

private:
    struct Tensor {
        std::string name;
        mome_tensor_type type;
        std::vector<int64_t> ne;
        uint64_t size_bytes;
        Fill fill;
    };
    void begin_entry(const std::string& key, mome_value_type type);
    template <typename T>
    void put(T v);
    void put_string(const std::string& s);
    void put_value_body(const GgufValue& v);

    std::vector<uint8_t> kv_;
    uint64_t n_kv_ = 0;
    std::vector<Tensor> tensors_;
};

}  // namespace mome
