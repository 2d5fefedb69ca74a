// Block formats (quant_blocks.h) -> UnpackedRow, one loop per type.
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"
#include "quant/quant_unpacked.h"

namespace mome {

namespace {

void shape(UnpackedRow& out, uint32_t type, int64_t n, bool k_quant, bool has_min) {
    out.type = type;
    out.k_quant = k_quant;
    out.has_min = has_min;
    const int64_t nb = n / (k_quant ? kQK_K : kQK);
    out.q.resize(static_cast<size_t>(n));
    out.scale.resize(static_cast<size_t>(nb));
    out.extra.resize(has_min || k_quant ? static_cast<size_t>(nb) : 0);
    out.group.resize(k_quant ? static_cast<size_t>(n / 16) : 0);
    out.group_min.resize(k_quant ? static_cast<size_t>(n / 16) : 0);
}

template <class Block>
void legacy_nibbles(const Block* b, int64_t nb, int offset, UnpackedRow& out) {
    for (int64_t i = 0; i < nb; ++i) {
        int8_t* q = out.q.data() + i * kQK;
        for (int j = 0; j < kQK / 2; ++j) {
            q[j] = static_cast<int8_t>((b[i].qs[j] & 0xF) - offset);
            q[j + kQK / 2] = static_cast<int8_t>((b[i].qs[j] >> 4) - offset);
        }
        out.scale[static_cast<size_t>(i)] = f16_to_float(b[i].d);
        if constexpr (std::is_same_v<Block, BlockQ4_1>) out.extra[static_cast<size_t>(i)] = f16_to_float(b[i].m);
    }
}

template <class Block>
void legacy_five_bits(const Block* b, int64_t nb, int offset, UnpackedRow& out) {
    for (int64_t i = 0; i < nb; ++i) {
        uint32_t qh;
        std::memcpy(&qh, b[i].qh, 4);
        int8_t* q = out.q.data() + i * kQK;
        for (int j = 0; j < kQK / 2; ++j) {
            q[j] = static_cast<int8_t>(((b[i].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4)) - offset);
            q[j + kQK / 2] = static_cast<int8_t>(((b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4)) - offset);
        }
        out.scale[static_cast<size_t>(i)] = f16_to_float(b[i].d);
    }
}

template <class Block>
void k_scales(const Block& b, int64_t i, UnpackedRow& out) {
    out.scale[static_cast<size_t>(i)] = f16_to_float(b.d);
    out.extra[static_cast<size_t>(i)] = f16_to_float(b.dmin);
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        k_scale_min(j, b.scales, &sc, &m);
        for (int g = 2 * j; g < 2 * j + 2; ++g) {
            out.group[static_cast<size_t>(16 * i + g)] = sc;
            out.group_min[static_cast<size_t>(16 * i + g)] = m;
        }
    }
}

void unpack_q4_k(const BlockQ4_K* b, int64_t nb, UnpackedRow& out) {
    for (int64_t i = 0; i < nb; ++i) {
        int8_t* q = out.q.data() + i * kQK_K;
        for (int chunk = 0; chunk < 4; ++chunk)
            for (int l = 0; l < 32; ++l) {
                q[64 * chunk + l] = static_cast<int8_t>(b[i].qs[32 * chunk + l] & 0xF);
                q[64 * chunk + 32 + l] = static_cast<int8_t>(b[i].qs[32 * chunk + l] >> 4);
            }
        k_scales(b[i], i, out);
    }
}

void unpack_q5_k(const BlockQ5_K* b, int64_t nb, UnpackedRow& out) {
    for (int64_t i = 0; i < nb; ++i) {
        int8_t* q = out.q.data() + i * kQK_K;
        for (int chunk = 0; chunk < 4; ++chunk)
            for (int l = 0; l < 32; ++l) {
                const int bits = b[i].qs[32 * chunk + l], high = b[i].qh[l];
                q[64 * chunk + l] = static_cast<int8_t>((bits & 0xF) | (((high >> (2 * chunk)) & 1) << 4));
                q[64 * chunk + 32 + l] = static_cast<int8_t>((bits >> 4) | (((high >> (2 * chunk + 1)) & 1) << 4));
            }
        k_scales(b[i], i, out);
    }
}

// Q6_K keeps its quants in 0..63: ggml's kernel subtracts the offset 32 through the activation
// sums (quant_dot_ref.cpp).
void unpack_q6_k(const BlockQ6_K* b, int64_t nb, UnpackedRow& out) {
    for (int64_t i = 0; i < nb; ++i) {
        for (int half = 0; half < 2; ++half) {
            const uint8_t* ql = b[i].ql + 64 * half;
            const uint8_t* qh = b[i].qh + 32 * half;
            int8_t* q = out.q.data() + i * kQK_K + 128 * half;
            for (int l = 0; l < 32; ++l) {
                q[l] = static_cast<int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
                q[l + 32] = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
                q[l + 64] = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                q[l + 96] = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        }
        out.scale[static_cast<size_t>(i)] = f16_to_float(b[i].d);
        out.extra[static_cast<size_t>(i)] = 0;
        for (int g = 0; g < 16; ++g) {
            out.group[static_cast<size_t>(16 * i + g)] = b[i].scales[g];
            out.group_min[static_cast<size_t>(16 * i + g)] = 0;
        }
    }
}

template <class T>
const T* as(const uint8_t* p) { return reinterpret_cast<const T*>(p); }

}  // namespace

void unpack_weight_row(uint32_t type, const uint8_t* src, int64_t n, UnpackedRow& out) {
    quant_row_bytes(type, n);
    const int64_t nb = n / kQK, nk = n / kQK_K;
    switch (type) {
    case MOME_TENSOR_TYPE_Q4_0: shape(out, type, n, false, false); return legacy_nibbles(as<BlockQ4_0>(src), nb, 8, out);
    case MOME_TENSOR_TYPE_Q4_1: shape(out, type, n, false, true); return legacy_nibbles(as<BlockQ4_1>(src), nb, 0, out);
    case MOME_TENSOR_TYPE_Q5_0: shape(out, type, n, false, false); return legacy_five_bits(as<BlockQ5_0>(src), nb, 16, out);
    case MOME_TENSOR_TYPE_Q5_1: {
        shape(out, type, n, false, true);
        legacy_five_bits(as<BlockQ5_1>(src), nb, 0, out);
        for (int64_t i = 0; i < nb; ++i) out.extra[static_cast<size_t>(i)] = f16_to_float(as<BlockQ5_1>(src)[i].m);
        return;
    }
    case MOME_TENSOR_TYPE_Q8_0: {
        shape(out, type, n, false, false);
        for (int64_t i = 0; i < nb; ++i) {
            std::memcpy(out.q.data() + i * kQK, as<BlockQ8_0>(src)[i].qs, kQK);
            out.scale[static_cast<size_t>(i)] = f16_to_float(as<BlockQ8_0>(src)[i].d);
        }
        return;
    }
    case MOME_TENSOR_TYPE_Q4_K: shape(out, type, n, true, true); return unpack_q4_k(as<BlockQ4_K>(src), nk, out);
    case MOME_TENSOR_TYPE_Q5_K: shape(out, type, n, true, true); return unpack_q5_k(as<BlockQ5_K>(src), nk, out);
    case MOME_TENSOR_TYPE_Q6_K: shape(out, type, n, true, false); return unpack_q6_k(as<BlockQ6_K>(src), nk, out);
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("tensor type %s has no quantized dot product in Mome", tensor_type_name(type).c_str()));
    }
}

void unpack_activation_row(uint32_t act_type, const uint8_t* src, int64_t n, UnpackedRow& out) {
    quant_row_bytes(act_type, n);
    switch (act_type) {
    case MOME_TENSOR_TYPE_Q8_0:
    case MOME_TENSOR_TYPE_Q8_1: {
        const bool q8_1 = act_type == MOME_TENSOR_TYPE_Q8_1;
        shape(out, act_type, n, false, q8_1);
        for (int64_t i = 0; i < n / kQK; ++i) {
            if (q8_1) {
                const BlockQ8_1& b = as<BlockQ8_1>(src)[i];
                std::memcpy(out.q.data() + i * kQK, b.qs, kQK);
                out.scale[static_cast<size_t>(i)] = f16_to_float(b.d);
                out.extra[static_cast<size_t>(i)] = f16_to_float(b.s);
            } else {
                const BlockQ8_0& b = as<BlockQ8_0>(src)[i];
                std::memcpy(out.q.data() + i * kQK, b.qs, kQK);
                out.scale[static_cast<size_t>(i)] = f16_to_float(b.d);
            }
        }
        return;
    }
    case MOME_TENSOR_TYPE_Q8_K: {
        shape(out, act_type, n, true, false);
        for (int64_t i = 0; i < n / kQK_K; ++i) {
            const BlockQ8_K& b = as<BlockQ8_K>(src)[i];
            std::memcpy(out.q.data() + i * kQK_K, b.qs, kQK_K);
            out.scale[static_cast<size_t>(i)] = b.d;
            for (int g = 0; g < 16; ++g) out.group[static_cast<size_t>(16 * i + g)] = b.bsums[g];
        }
        return;
    }
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("%s is not an activation type (Q8_0, Q8_1 or Q8_K)", tensor_type_name(act_type).c_str()));
    }
}

}  // namespace mome
