// libFuzzer harness of the GGUF reader through the C ABI: header, metadata (every value
// type, nested arrays), tensor infos, alignment, the Llama configuration and tensor checks,
// then every value and tensor read back and, for a model that opens fully, one decode step.
// Any input must open or fail with a status; what opens must be self-consistent.
#include <bitset>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../native/abi_structs.h"
#include "fuzz_support.h"

namespace {

// Every getter on an element (the mismatched ones must refuse), or only the getter of its
// type. A refusal throws inside the library, which costs thousands of instructions and under
// ASan a system call, while the refusal of a getter depends only on the value's type: so every
// getter runs once per value type and input (Probed), the matching one on every element.
void read_element(const mome_value* v, uint64_t i, mome_value_type type, bool every_getter) {
    int64_t i64;
    uint64_t u64;
    double f64;
    uint8_t b;
    const char* s;
    uint64_t len;
    const bool integer = type != MOME_VALUE_TYPE_FLOAT32 && type != MOME_VALUE_TYPE_FLOAT64 && type != MOME_VALUE_TYPE_BOOL &&
                         type != MOME_VALUE_TYPE_STRING && type != MOME_VALUE_TYPE_ARRAY;
    if (every_getter || integer) {
        (void)mome_value_get_i64(v, i, &i64);
        (void)mome_value_get_u64(v, i, &u64);
    }
    if (every_getter || integer || type == MOME_VALUE_TYPE_FLOAT32 || type == MOME_VALUE_TYPE_FLOAT64) (void)mome_value_get_f64(v, i, &f64);
    if (every_getter || type == MOME_VALUE_TYPE_BOOL) (void)mome_value_get_bool(v, i, &b);
    if ((every_getter || type == MOME_VALUE_TYPE_STRING) && mome_value_get_string(v, i, &s, &len) == MOME_STATUS_OK && s[len] != '\0')
        std::abort();
}

// The (type, element type) pairs whose every getter has run on this input.
using Probed = std::bitset<32 * 32>;

void read_value(const mome_value* v, int depth, Probed& probed) {
    mome_value_info info{};
    mome_fuzz::check(mome_value_get_info(v, &info), "mome_value_get_info");
    const bool array = info.type == MOME_VALUE_TYPE_ARRAY;
    const uint64_t n = array ? info.count : 1;
    const size_t kind = (static_cast<size_t>(info.type) % 32) * 32 + static_cast<size_t>(info.element_type) % 32;
    const bool first_of_its_type = !probed[kind];
    probed[kind] = true;
    for (uint64_t i = 0; i < n && i < 16; ++i) {
        read_element(v, i, array ? info.element_type : info.type, i == 0 && first_of_its_type);
        const mome_value* element = nullptr;
        if (array && info.element_type == MOME_VALUE_TYPE_ARRAY && mome_value_get_element(v, i, &element) == MOME_STATUS_OK && depth < 16)
            read_value(element, depth + 1, probed);
        else if (i == 0 && first_of_its_type && mome_value_get_element(v, i, &element) == MOME_STATUS_OK)
            std::abort();  // only arrays of arrays have elements
    }
    // One past the end must be refused, never read.
    int64_t past;
    if (array && first_of_its_type && mome_value_get_i64(v, info.count, &past) == MOME_STATUS_OK) std::abort();
}

void read_model(const mome_model* model) {
    mome_file_info file{};
    mome_fuzz::check(mome_model_get_file_info(model, &file), "mome_model_get_file_info");
    mome_llama_config config{};
    (void)mome_model_get_config(model, &config);
    Probed probed;
    uint64_t n_meta = 0;
    mome_fuzz::check(mome_model_meta_count(model, &n_meta), "mome_model_meta_count");
    for (uint64_t i = 0; i < n_meta; ++i) {
        const char* key = nullptr;
        const mome_value* value = nullptr;
        mome_fuzz::check(mome_model_meta_at(model, i, &key, &value), "mome_model_meta_at");
        const mome_value* found = nullptr;
        if (mome_model_meta_find(model, key, &found) != MOME_STATUS_OK || found != value) std::abort();
        read_value(value, 0, probed);
    }
    uint64_t n_tensors = 0;
    mome_fuzz::check(mome_model_tensor_count(model, &n_tensors), "mome_model_tensor_count");
    for (uint64_t i = 0; i < n_tensors; ++i) {
        mome_tensor_info t{};
        mome_fuzz::check(mome_model_tensor_at(model, i, &t), "mome_model_tensor_at");
        if (t.file_offset < file.data_offset || t.file_offset > file.file_size || t.size_bytes > file.file_size - t.file_offset) {
            std::fprintf(stderr, "tensor '%s' (%llu bytes at %llu) is outside the data of a %llu-byte file starting at %llu\n", t.name,
                         static_cast<unsigned long long>(t.size_bytes), static_cast<unsigned long long>(t.file_offset),
                         static_cast<unsigned long long>(file.file_size), static_cast<unsigned long long>(file.data_offset));
            std::abort();
        }
        uint64_t index = 0;
        if (mome_model_tensor_find(model, t.name, &index) != MOME_STATUS_OK || index != i) std::abort();  // names are unique
        uint64_t count = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) count *= static_cast<uint64_t>(t.ne[d]);
        if (count <= 4096) {
            std::vector<float> values(count + 1);
            (void)mome_model_tensor_read_f32(model, i, values.data(), count);
            if (i == 0) (void)mome_model_tensor_read_f32(model, i, values.data(), count + 1);  // wrong count: refused
        }
    }
}

// One token through a model that opened fully (weights, RoPE tables, KV cache of 4).
void decode_one(const mome_model* model) {
    mome_session_params p = session_defaults();
    p.n_ctx = 4;
    p.n_threads = 1;
    mome_session* session = nullptr;
    if (mome_session_create(model, &p, &session) != MOME_STATUS_OK) return;
    mome_llama_config config{};
    mome_fuzz::check(mome_model_get_config(model, &config), "mome_model_get_config");
    if (config.n_vocab <= 1 << 16) {
        const int32_t token = 1, position = 0, seq = 0;
        mome_batch batch{sizeof(mome_batch), 1, &token, &position, &seq, nullptr};
        std::vector<float> logits(static_cast<size_t>(config.n_vocab));
        (void)mome_session_decode(session, &batch, logits.data(), logits.size());
    }
    mome_session_free(session);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = mome_fuzz::write_input("gguf", data, size);
    for (uint8_t metadata_only : {0, 1}) {
        mome_model_params params = model_defaults();
        params.metadata_only = metadata_only;
        mome_model* model = nullptr;
        if (mome_model_open(path.c_str(), &params, &model) != MOME_STATUS_OK) {
            if (model != nullptr || mome_last_error()[0] == '\0') std::abort();  // a failure leaves *out alone and says why
            continue;
        }
        read_model(model);
        if (!metadata_only) decode_one(model);
        mome_model_free(model);
        if (!metadata_only) break;  // a full open implies the metadata-only one
    }
    return 0;
}
