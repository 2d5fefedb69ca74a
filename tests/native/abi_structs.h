// Versioned ABI structs for the tests: struct_size set as a caller of this mome.h sets it.
#pragma once

#include <cstdlib>

#include "mome.h"

template <typename T>
T sized() {
    T s{};
    s.struct_size = sizeof(T);
    return s;
}

inline mome_model_params model_defaults() {
    auto p = sized<mome_model_params>();
    if (mome_model_default_params(&p) != MOME_STATUS_OK) std::abort();
    return p;
}

inline mome_session_params session_defaults() {
    auto p = sized<mome_session_params>();
    if (mome_session_default_params(&p) != MOME_STATUS_OK) std::abort();
    return p;
}

inline mome_bank_params bank_defaults() {
    auto p = sized<mome_bank_params>();
    if (mome_bank_default_params(&p) != MOME_STATUS_OK) std::abort();
    return p;
}
