// Versioned ABI structs (mome.h, "Versioned structs"): each starts with the caller's
// struct_size, which says which layout the caller was built with. The library reads the
// bytes that layout has (fields past it keep their defaults) and writes no more than that.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "mome.h"

namespace mome {

// The oldest layout of each versioned struct the library still reads, and its C name.
// ABI 4 introduced struct_size, so today each oldest layout is the current one; when a
// struct grows at the end, its line keeps the size it had before.
template <typename T>
struct AbiStruct;

#define MOME_ABI_STRUCT(T, OLDEST)                        \
    template <>                                           \
    struct AbiStruct<T> {                                 \
        static constexpr uint32_t oldest_size = (OLDEST); \
        static constexpr const char* name = #T;           \
    }

MOME_ABI_STRUCT(mome_model_params, sizeof(mome_model_params));
MOME_ABI_STRUCT(mome_synthetic_params, sizeof(mome_synthetic_params));
MOME_ABI_STRUCT(mome_session_params, sizeof(mome_session_params));
MOME_ABI_STRUCT(mome_batch, sizeof(mome_batch));
MOME_ABI_STRUCT(mome_router_desc, sizeof(mome_router_desc));
MOME_ABI_STRUCT(mome_lora_desc, sizeof(mome_lora_desc));
MOME_ABI_STRUCT(mome_bank_params, sizeof(mome_bank_params));
MOME_ABI_STRUCT(mome_fact_desc, sizeof(mome_fact_desc));
MOME_ABI_STRUCT(mome_fact_grads, sizeof(mome_fact_grads));
MOME_ABI_STRUCT(mome_tuner_params, sizeof(mome_tuner_params));
MOME_ABI_STRUCT(mome_tuner_step_result, sizeof(mome_tuner_step_result));
MOME_ABI_STRUCT(mome_finetuner_params, sizeof(mome_finetuner_params));
MOME_ABI_STRUCT(mome_finetuner_step_result, sizeof(mome_finetuner_step_result));

#undef MOME_ABI_STRUCT

// The caller's struct_size, refused unless it lies between the oldest layout and this one.
template <typename T>
uint32_t checked_struct_size(const T* s) {
    using Traits = AbiStruct<T>;
    uint32_t size;
    std::memcpy(&size, s, sizeof size);
    if (size < Traits::oldest_size)
        fail(MOME_STATUS_INVALID_ARGUMENT,
             format("%s.struct_size is %u, smaller than the oldest layout this library reads (%u bytes; its current one has "
                    "%zu): set struct_size = sizeof(%s)",
                    Traits::name, size, Traits::oldest_size, sizeof(T), Traits::name));
    if (size > sizeof(T))
        fail(MOME_STATUS_INVALID_ARGUMENT,
             format("%s.struct_size is %u, larger than this library's %s of %zu bytes: the caller was built against a newer "
                    "mome.h than this library (ABI %d)",
                    Traits::name, size, Traits::name, sizeof(T), MOME_ABI_VERSION));
    return size;
}

// A caller's struct as this library's layout: the bytes the caller has over `defaults`.
template <typename T>
T read_abi_struct(const T* in, const T& defaults, const char* what) {
    require_arg(in != nullptr, what);
    const uint32_t size = checked_struct_size(in);
    T out = defaults;
    std::memcpy(&out, in, size);
    out.struct_size = sizeof(T);
    return out;
}

// Writes `value` into a caller's struct, as many bytes as the caller's layout has.
template <typename T>
void write_abi_struct(T* out, const T& value, const char* what) {
    require_arg(out != nullptr, what);
    const uint32_t size = checked_struct_size(out);
    T v = value;
    v.struct_size = size;
    std::memcpy(out, &v, size);
}

// A struct of this library's layout with the size field set (for building one internally).
template <typename T>
T abi_struct() {
    T s{};
    s.struct_size = sizeof(T);
    return s;
}

}  // namespace mome
