// The byte layouts of ggml's block-quantized types, as GGUF stores them (little-endian,
// packed). Written from the format description in ggml-common.h: each struct is one block,
// its size checked against the type table in gguf/tensor_types.cpp.
#pragma once

#include <cstdint>

namespace mome {

constexpr int64_t kQK = 32;   // elements per block of the "legacy" types (Q4_0 ... Q8_1)
constexpr int64_t kQK_K = 256;  // elements per super-block of the k-quants

// Q4_0: x = d * (q - 8), q in 0..15. Element j < 16 is the low nibble of qs[j], element
// j + 16 its high nibble.
struct BlockQ4_0 {
    uint16_t d;  // F16 scale
    uint8_t qs[kQK / 2];
};

// Q4_1: x = d * q + m, q in 0..15, nibbles as Q4_0.
struct BlockQ4_1 {
    uint16_t d, m;  // F16 scale and minimum
    uint8_t qs[kQK / 2];
};

// Q5_0: x = d * (q - 16), q in 0..31: the low 4 bits as Q4_0, bit 4 of element j is bit j
// of the little-endian 32-bit qh.
struct BlockQ5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};

// Q5_1: x = d * q + m, q in 0..31, bits as Q5_0.
struct BlockQ5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[kQK / 2];
};

// Q8_0: x = d * q, q in -128..127.
struct BlockQ8_0 {
    uint16_t d;
    int8_t qs[kQK];
};

// Q8_1 (activations only): Q8_0 plus s = d * sum(q), in F16.
struct BlockQ8_1 {
    uint16_t d, s;
    int8_t qs[kQK];
};

// Q4_K: 8 sub-blocks of 32; x = d * sc_j * q - dmin * m_j, q in 0..15. The 6-bit sc_j and
// m_j are packed into 12 bytes (see k_scale_min). Each 64 elements share 32 bytes of qs:
// the first 32 are the low nibbles, the next 32 the high nibbles.
struct BlockQ4_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[kQK_K / 2];
};

// Q5_K: Q4_K plus a fifth bit: bit (2c) of qh[l] belongs to element l of the low-nibble run
// of 64-chunk c, bit (2c + 1) to element l of its high-nibble run.
struct BlockQ5_K {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[kQK_K / 8];
    uint8_t qs[kQK_K / 2];
};

// Q6_K: 16 sub-blocks of 16; x = d * sc_j * (q - 32), q in 0..63, sc_j a signed byte. Each
// half of 128 elements takes 64 bytes of ql and 32 of qh: element l (< 32) + 32 k of the half
// has its low 4 bits in ql[l + 32 (k & 1)] (low nibble for k < 2, high nibble otherwise) and
// its top 2 bits in bits 2k..2k+1 of qh[l].
struct BlockQ6_K {
    uint8_t ql[kQK_K / 2];
    uint8_t qh[kQK_K / 4];
    int8_t scales[kQK_K / 16];
    uint16_t d;
};

// Q8_K (activations only): x = d * q with an F32 d, plus the sum of each 16 quants.
struct BlockQ8_K {
    float d;
    int8_t qs[kQK_K];
    int16_t bsums[kQK_K / 16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
                  sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36,
              "legacy block sizes");
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 &&
                  sizeof(BlockQ8_K) == 292,
              "k-quant block sizes");

// Sub-block j (< 8) of a Q4_K/Q5_K block: its 6-bit scale and minimum. Bytes 0..3 hold the
// scales of sub-blocks 0..3 in their low 6 bits, bytes 4..7 their minima; sub-blocks 4..7
// take their low 4 bits from the nibbles of bytes 8..11 and their top 2 bits from the spare
// top bits of bytes 0..7.
inline void k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

}  // namespace mome
