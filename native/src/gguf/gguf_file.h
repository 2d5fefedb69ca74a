// GGUF reader (versions 2 and 3): metadata and tensor infos parsed and validated against the
// file's size up front, tensor data left in the memory mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gguf/mapped_file.h"
#include "mome.h"

// The ABI's opaque metadata value. Scalars and arrays of scalars stay in the mapping
// (little-endian bytes); strings are copied so they can be NUL-terminated.
struct mome_value {
    mome_value_type type = MOME_VALUE_TYPE_UINT8;
    mome_value_type element_type = MOME_VALUE_TYPE_UINT8;
    uint64_t count = 1;                 // array elements; 1 for a scalar or a string
    const uint8_t* raw = nullptr;       // scalar or scalar-array bytes
    std::vector<std::string> strings;   // the string, or the array's strings
    std::vector<mome_value> arrays;     // the array's arrays
};

namespace mome {

using GgufValue = mome_value;

size_t gguf_scalar_size(mome_value_type type);  // 0 for strings and arrays
const char* gguf_type_name(mome_value_type type);

struct GgufTensor {
    std::string name;
    uint32_t type = 0;
    uint32_t n_dims = 0;
    int64_t ne[MOME_MAX_DIMS] = {1, 1, 1, 1};
    int64_t n_elements = 0;
    uint64_t offset = 0;  // relative to the data section, as stored in the file
    uint64_t size_bytes = 0;
};

class GgufFile {
public:
    // Throws mome::Error whose message starts with the path.
    static std::unique_ptr<GgufFile> open(const std::string& path);

    const std::string& path() const { return map_.path(); }
    uint32_t version() const { return version_; }
    uint32_t alignment() const { return alignment_; }
    uint64_t file_size() const { return map_.size(); }
    uint64_t data_offset() const { return data_offset_; }

    size_t meta_count() const { return keys_.size(); }
    const std::string& meta_key(size_t i) const { return keys_[i]; }
    const GgufValue& meta_value(size_t i) const { return values_[i]; }
    const GgufValue* find(const std::string& key) const;

    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* find_tensor(const std::string& name) const;
    const uint8_t* tensor_data(const GgufTensor& t) const { return map_.data() + data_offset_ + t.offset; }

private:
    explicit GgufFile(const std::string& path) : map_(path) {}
    void parse();

    MappedFile map_;
    uint32_t version_ = 0;
    uint32_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::string> keys_;
    std::vector<GgufValue> values_;
    std::unordered_map<std::string, size_t> key_index_;
    std::vector<GgufTensor> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

// Typed reads of metadata values, converting between integer widths (used by model code).
int64_t value_as_i64(const GgufValue& v, uint64_t index = 0);
uint64_t value_as_u64(const GgufValue& v, uint64_t index = 0);
double value_as_f64(const GgufValue& v, uint64_t index = 0);
bool value_as_bool(const GgufValue& v, uint64_t index = 0);
const std::string& value_as_string(const GgufValue& v, uint64_t index = 0);

}  // namespace mome
