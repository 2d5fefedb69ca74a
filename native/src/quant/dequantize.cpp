// Reference dequantization, one function per block type, written from quant_blocks.h.
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"

namespace mome {

namespace {

template <class Block>
const Block* blocks(const uint8_t* src) { return reinterpret_cast<const Block*>(src); }

uint32_t high_bits(const uint8_t qh[4]) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}

void dequantize_q4_0(const BlockQ4_0& b, float* y) {
    const float d = f16_to_float(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = d * static_cast<float>((b.qs[j] & 0xF) - 8);
        y[j + kQK / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
    }
}

void dequantize_q4_1(const BlockQ4_1& b, float* y) {
    const float d = f16_to_float(b.d), m = f16_to_float(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
        y[j] = static_cast<float>(b.qs[j] & 0xF) * d + m;
        y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
}

void dequantize_q5_0(const BlockQ5_0& b, float* y) {
    const float d = f16_to_float(b.d);
    const uint32_t qh = high_bits(b.qh);
    for (int j = 0; j < kQK / 2; ++j) {
        const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
        const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
        y[j] = d * static_cast<float>(lo - 16);
        y[j + kQK / 2] = d * static_cast<float>(hi - 16);
    }
}

void dequantize_q5_1(const BlockQ5_1& b, float* y) {
    const float d = f16_to_float(b.d), m = f16_to_float(b.m);
    const uint32_t qh = high_bits(b.qh);
    for (int j = 0; j < kQK / 2; ++j) {
        const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
        const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
        y[j] = static_cast<float>(lo) * d + m;
        y[j + kQK / 2] = static_cast<float>(hi) * d + m;
    }
}

void dequantize_q8_0(const BlockQ8_0& b, float* y) {
    const float d = f16_to_float(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b.qs[j]);
}

void dequantize_q8_1(const BlockQ8_1& b, float* y) {
    const float d = f16_to_float(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b.qs[j]);
}

void dequantize_q4_k(const BlockQ4_K& b, float* y) {
    const float d = f16_to_float(b.d), dmin = f16_to_float(b.dmin);
    for (int chunk = 0; chunk < 4; ++chunk) {
        const uint8_t* q = b.qs + 32 * chunk;
        uint8_t sc, m;
        k_scale_min(2 * chunk, b.scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        k_scale_min(2 * chunk + 1, b.scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; ++l) y[64 * chunk + l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; ++l) y[64 * chunk + 32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
}

void dequantize_q5_k(const BlockQ5_K& b, float* y) {
    const float d = f16_to_float(b.d), dmin = f16_to_float(b.dmin);
    for (int chunk = 0; chunk < 4; ++chunk) {
        const uint8_t* q = b.qs + 32 * chunk;
        const uint8_t low_bit = static_cast<uint8_t>(1u << (2 * chunk)), high_bit = static_cast<uint8_t>(2u << (2 * chunk));
        uint8_t sc, m;
        k_scale_min(2 * chunk, b.scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        k_scale_min(2 * chunk + 1, b.scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; ++l)
            y[64 * chunk + l] = d1 * static_cast<float>((q[l] & 0xF) + (b.qh[l] & low_bit ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l)
            y[64 * chunk + 32 + l] = d2 * static_cast<float>((q[l] >> 4) + (b.qh[l] & high_bit ? 16 : 0)) - m2;
    }
}

void dequantize_q6_k(const BlockQ6_K& b, float* y) {
    const float d = f16_to_float(b.d);
    for (int half = 0; half < 2; ++half) {
        const uint8_t* ql = b.ql + 64 * half;
        const uint8_t* qh = b.qh + 32 * half;
        const int8_t* sc = b.scales + 8 * half;
        float* out = y + 128 * half;
        for (int l = 0; l < 32; ++l) {
            const int s = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            out[l] = d * sc[s] * static_cast<float>(q1);
            out[l + 32] = d * sc[s + 2] * static_cast<float>(q2);
            out[l + 64] = d * sc[s + 4] * static_cast<float>(q3);
            out[l + 96] = d * sc[s + 6] * static_cast<float>(q4);
        }
    }
}

void dequantize_q8_k(const BlockQ8_K& b, float* y) {
    for (int j = 0; j < kQK_K; ++j) y[j] = b.d * static_cast<float>(b.qs[j]);
}

template <class Block>
void each_block(const uint8_t* src, int64_t n, int64_t block_size, float* dst, void (*one)(const Block&, float*)) {
    const Block* b = blocks<Block>(src);
    for (int64_t i = 0; i < n / block_size; ++i) one(b[i], dst + i * block_size);
}

}  // namespace

void dequantize_row(uint32_t type, const uint8_t* src, int64_t n, float* dst) {
    quant_row_bytes(type, n);  // checks n against the block size
    switch (type) {
    case MOME_TENSOR_TYPE_Q4_0: return each_block<BlockQ4_0>(src, n, kQK, dst, dequantize_q4_0);
    case MOME_TENSOR_TYPE_Q4_1: return each_block<BlockQ4_1>(src, n, kQK, dst, dequantize_q4_1);
    case MOME_TENSOR_TYPE_Q5_0: return each_block<BlockQ5_0>(src, n, kQK, dst, dequantize_q5_0);
    case MOME_TENSOR_TYPE_Q5_1: return each_block<BlockQ5_1>(src, n, kQK, dst, dequantize_q5_1);
    case MOME_TENSOR_TYPE_Q8_0: return each_block<BlockQ8_0>(src, n, kQK, dst, dequantize_q8_0);
    case MOME_TENSOR_TYPE_Q8_1: return each_block<BlockQ8_1>(src, n, kQK, dst, dequantize_q8_1);
    case MOME_TENSOR_TYPE_Q4_K: return each_block<BlockQ4_K>(src, n, kQK_K, dst, dequantize_q4_k);
    case MOME_TENSOR_TYPE_Q5_K: return each_block<BlockQ5_K>(src, n, kQK_K, dst, dequantize_q5_k);
    case MOME_TENSOR_TYPE_Q6_K: return each_block<BlockQ6_K>(src, n, kQK_K, dst, dequantize_q6_k);
    case MOME_TENSOR_TYPE_Q8_K: return each_block<BlockQ8_K>(src, n, kQK_K, dst, dequantize_q8_k);
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("Mome cannot dequantize tensor type %s", tensor_type_name(type).c_str()));
    }
}

void dequantize_matrix_row(const Tensor& W, int64_t row, float* out) {
    dequantize_row(W.type, W.data + row * quant_row_bytes(W.type, W.cols), W.cols, out);
}

}  // namespace mome
