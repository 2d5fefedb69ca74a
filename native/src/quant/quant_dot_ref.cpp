// The readable reference of the quantized dot products, one function per weight type,
// following ggml's arithmetic: an exact integer sum per block, then F32 scales.
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"
#include "quant/quant_blocks.h"

namespace mome {

namespace {

uint32_t high_bits(const uint8_t qh[4]) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}

float dot_q4_0(const BlockQ4_0* x, const BlockQ8_0* y, int64_t nb) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + kQK / 2];
        }
        sum += (f16_to_float(x[i].d) * f16_to_float(y[i].d)) * static_cast<float>(sumi);
    }
    return sum;
}

float dot_q4_1(const BlockQ4_1* x, const BlockQ8_1* y, int64_t nb) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQK / 2; ++j) {
            sumi += (x[i].qs[j] & 0xF) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + kQK / 2];
        }
        // sum_j (d q_j + m) (d' q'_j) = d d' sum q q' + m (d' sum q'), the last factor being s.
        sum += (f16_to_float(x[i].d) * f16_to_float(y[i].d)) * static_cast<float>(sumi) + f16_to_float(x[i].m) * f16_to_float(y[i].s);
    }
    return sum;
}

template <class Block>
int sumi_q5(const Block& x, const int8_t* y, int offset) {
    const uint32_t qh = high_bits(x.qh);
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
        const int lo = (x.qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
        const int hi = (x.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
        sumi += (lo - offset) * y[j] + (hi - offset) * y[j + kQK / 2];
    }
    return sumi;
}

float dot_q5_0(const BlockQ5_0* x, const BlockQ8_0* y, int64_t nb) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i)
        sum += (f16_to_float(x[i].d) * f16_to_float(y[i].d)) * static_cast<float>(sumi_q5(x[i], y[i].qs, 16));
    return sum;
}

float dot_q5_1(const BlockQ5_1* x, const BlockQ8_1* y, int64_t nb) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i)
        sum += (f16_to_float(x[i].d) * f16_to_float(y[i].d)) * static_cast<float>(sumi_q5(x[i], y[i].qs, 0)) +
               f16_to_float(x[i].m) * f16_to_float(y[i].s);
    return sum;
}

float dot_q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t nb) {
    float sum = 0;
    for (int64_t i = 0; i < nb; ++i) {
        int sumi = 0;
        for (int j = 0; j < kQK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
        sum += (f16_to_float(x[i].d) * f16_to_float(y[i].d)) * static_cast<float>(sumi);
    }
    return sum;
}

// Q4_K and Q5_K: sum_j (d sc_j q - dmin m_j) . (d' q') over sub-blocks j of 32
//   = d d' sum_j sc_j (q . q')_j  -  dmin d' sum_j m_j (sum of q' in j),
// the sums of q' coming from Q8_K's bsums (two per sub-block).
float k_superblock(float d, float dmin, const uint8_t* scales, const int* q, const BlockQ8_K& y) {
    int dot = 0, mins = 0;
    for (int j = 0; j < 8; ++j) {
        uint8_t sc, m;
        k_scale_min(j, scales, &sc, &m);
        int sub = 0;
        for (int l = 0; l < 32; ++l) sub += q[32 * j + l] * y.qs[32 * j + l];
        dot += sc * sub;
        mins += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
    }
    return (d * y.d) * static_cast<float>(dot) - (dmin * y.d) * static_cast<float>(mins);
}

float dot_q4_k(const BlockQ4_K* x, const BlockQ8_K* y, int64_t nb) {
    float sum = 0;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        for (int chunk = 0; chunk < 4; ++chunk)
            for (int l = 0; l < 32; ++l) {
                q[64 * chunk + l] = x[i].qs[32 * chunk + l] & 0xF;
                q[64 * chunk + 32 + l] = x[i].qs[32 * chunk + l] >> 4;
            }
        sum += k_superblock(f16_to_float(x[i].d), f16_to_float(x[i].dmin), x[i].scales, q, y[i]);
    }
    return sum;
}

float dot_q5_k(const BlockQ5_K* x, const BlockQ8_K* y, int64_t nb) {
    float sum = 0;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        for (int chunk = 0; chunk < 4; ++chunk)
            for (int l = 0; l < 32; ++l) {
                const uint8_t bits = x[i].qs[32 * chunk + l], high = x[i].qh[l];
                q[64 * chunk + l] = (bits & 0xF) | (((high >> (2 * chunk)) & 1) << 4);
                q[64 * chunk + 32 + l] = (bits >> 4) | (((high >> (2 * chunk + 1)) & 1) << 4);
            }
        sum += k_superblock(f16_to_float(x[i].d), f16_to_float(x[i].dmin), x[i].scales, q, y[i]);
    }
    return sum;
}

// Q6_K: d d' sum_j sc_j (q - 32) . q' over sub-blocks j of 16.
float dot_q6_k(const BlockQ6_K* x, const BlockQ8_K* y, int64_t nb) {
    float sum = 0;
    int q[kQK_K];
    for (int64_t i = 0; i < nb; ++i) {
        for (int half = 0; half < 2; ++half)
            for (int l = 0; l < 32; ++l) {
                const uint8_t* ql = x[i].ql + 64 * half;
                const uint8_t qh = x[i].qh[32 * half + l];
                int* out = q + 128 * half;
                out[l] = ((ql[l] & 0xF) | (((qh >> 0) & 3) << 4)) - 32;
                out[l + 32] = ((ql[l + 32] & 0xF) | (((qh >> 2) & 3) << 4)) - 32;
                out[l + 64] = ((ql[l] >> 4) | (((qh >> 4) & 3) << 4)) - 32;
                out[l + 96] = ((ql[l + 32] >> 4) | (((qh >> 6) & 3) << 4)) - 32;
            }
        int dot = 0;
        for (int j = 0; j < 16; ++j) {
            int sub = 0;
            for (int l = 0; l < 16; ++l) sub += q[16 * j + l] * y[i].qs[16 * j + l];
            dot += x[i].scales[j] * sub;
        }
        sum += (f16_to_float(x[i].d) * y[i].d) * static_cast<float>(dot);
    }
    return sum;
}

template <class W, class A>
float typed(float (*dot)(const W*, const A*, int64_t), const uint8_t* w, const uint8_t* act, int64_t nb) {
    return dot(reinterpret_cast<const W*>(w), reinterpret_cast<const A*>(act), nb);
}

}  // namespace

float quant_dot_ref(uint32_t weight_type, const uint8_t* w, const uint8_t* act, int64_t n) {
    quant_row_bytes(weight_type, n);
    switch (weight_type) {
    case MOME_TENSOR_TYPE_Q4_0: return typed(dot_q4_0, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q4_1: return typed(dot_q4_1, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q5_0: return typed(dot_q5_0, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q5_1: return typed(dot_q5_1, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q8_0: return typed(dot_q8_0, w, act, n / kQK);
    case MOME_TENSOR_TYPE_Q4_K: return typed(dot_q4_k, w, act, n / kQK_K);
    case MOME_TENSOR_TYPE_Q5_K: return typed(dot_q5_k, w, act, n / kQK_K);
    case MOME_TENSOR_TYPE_Q6_K: return typed(dot_q6_k, w, act, n / kQK_K);
    default:
        fail(MOME_STATUS_UNSUPPORTED, format("tensor type %s has no quantized dot product in Mome", tensor_type_name(weight_type).c_str()));
    }
}

}  // namespace mome
