// The fast quantized matmul over unpacked rows, written once in plain loops that the compiler
// vectorises (int8 products summed in int32) and compiled once per instruction set
// (quant_avx512.cpp, quant_avx2.cpp, quant_portable.cpp). Internal linkage only, so the
// per-ISA copies never meet at link time. The arithmetic is quant_dot_ref's: the same
// integers, then the same F32 scale products in block order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "quant/quant_unpacked.h"

namespace {

inline int32_t int8_dot(const int8_t* a, const int8_t* b, int n) {
    int32_t s = 0;
    for (int l = 0; l < n; ++l) s += static_cast<int32_t>(a[l]) * static_cast<int32_t>(b[l]);
    return s;
}

inline float unpacked_dot(const mome::UnpackedRow& w, const mome::UnpackedRow& a, int64_t n) {
    float sum = 0;
    if (!w.k_quant) {
        const int64_t nb = n / 32;
        if (w.has_min) {
            for (int64_t i = 0; i < nb; ++i)
                sum += (w.scale[i] * a.scale[i]) * static_cast<float>(int8_dot(w.q.data() + 32 * i, a.q.data() + 32 * i, 32)) +
                       w.extra[i] * a.extra[i];
        } else {
            for (int64_t i = 0; i < nb; ++i)
                sum += (w.scale[i] * a.scale[i]) * static_cast<float>(int8_dot(w.q.data() + 32 * i, a.q.data() + 32 * i, 32));
        }
        return sum;
    }
    const int64_t nb = n / 256;
    for (int64_t i = 0; i < nb; ++i) {
        int32_t dot = 0, mins = 0;
        for (int g = 0; g < 16; ++g) {
            const int64_t k = 16 * i + g;
            dot += w.group[k] * int8_dot(w.q.data() + 16 * k, a.q.data() + 16 * k, 16);
            mins += w.group_min[k] * a.group[k];
        }
        if (w.has_min) sum += (w.scale[i] * a.scale[i]) * static_cast<float>(dot) - (w.extra[i] * a.scale[i]) * static_cast<float>(mins);
        else sum += (w.scale[i] * a.scale[i]) * static_cast<float>(dot);
    }
    return sum;
}

// Rows [r0, r1) of Y ([n_tokens x rows]): each weight row is unpacked once for all tokens.
inline void quant_rows_impl(uint32_t type, const uint8_t* W, int64_t row_bytes, int64_t rows, int64_t cols,
                            const std::vector<mome::UnpackedRow>& acts, float* Y, int64_t r0, int64_t r1) {
    thread_local mome::UnpackedRow w;
    for (int64_t r = r0; r < r1; ++r) {
        mome::unpack_weight_row(type, W + r * row_bytes, cols, w);
        for (size_t t = 0; t < acts.size(); ++t) Y[static_cast<int64_t>(t) * rows + r] = unpacked_dot(w, acts[t], cols);
    }
}

}  // namespace
