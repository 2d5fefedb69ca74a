// The orders in which ggml's CPU backend (its AVX-512 build, as LLamaSharp ships it) sums the
// float products of attention, spelled out so that Mome's attention gives the same floats:
//  - ggml_vec_dot_f32 (query-key dots; the value sums of a one-token call): products i <
//    n - n % 64 go to four 16-lane accumulators (product i to accumulator (i / 16) % 4, lane
//    i % 16, one fused multiply-add each), combined as (a0 + a2) + (a1 + a3), whose 16 lanes
//    are added as _mm512_reduce_add_ps adds them; the remaining products are then added one
//    at a time, as GCC compiled that loop in LLamaSharp 0.30.0's binary (read from its
//    disassembly): each product rounded first, except the last (remaining % 8), which are
//    fused multiply-adds.
//  - llamafile's tinyBLAS (the value sums of a call of two or more tokens): one 16-lane
//    accumulator, product i in lane i % 16, then the same 16-lane total.
// The value sums run over llama.cpp's KV view, which it pads to a multiple of 256 positions;
// the padding adds zero products, so only where each product lands matters.
#pragma once

#include <cstdint>

namespace mome {

// _mm512_reduce_add_ps's order: the two halves lane by lane, then the halves of that, ...
inline float lanes16_total(const float* l) {
    float h8[8], h4[4];
    for (int i = 0; i < 8; ++i) h8[i] = l[i] + l[i + 8];
    for (int i = 0; i < 4; ++i) h4[i] = h8[i] + h8[i + 4];
    return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

// ggml_vec_dot_f32's four accumulators (64 lanes, lane i % 64 for product i) as the one
// 16-lane register it totals.
inline void fold_lanes64(const float* l64, float* l16) {
    for (int i = 0; i < 16; ++i) l16[i] = (l64[i] + l64[32 + i]) + (l64[16 + i] + l64[48 + i]);
}

// How many positions llama.cpp's KV view holds when n are in use (a multiple of 256).
inline int64_t kv_view_length(int64_t n) { return (n + 255) / 256 * 256; }

}  // namespace mome
