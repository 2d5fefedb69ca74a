// A quantized row in the flat form the fast kernels stream: every quant as one int8 in element
// order, then the per-block numbers. Unpacking changes no value: the kernels compute the same
// integers and the same F32 scale products as quant_dot_ref.
#pragma once

#include <cstdint>
#include <vector>

namespace mome {

struct UnpackedRow {
    uint32_t type = 0;     // the weight type (or Q8_0/Q8_1/Q8_K for activations)
    bool k_quant = false;  // blocks of 256 in groups of 16 (else blocks of 32)
    bool has_min = false;  // Q4_1/Q5_1 weights (with Q8_1 activations), Q4_K/Q5_K weights
    std::vector<int8_t> q;  // n quants, offsets (-8, -16) already applied; Q6_K's 0..63 without its -32
    // Blocks of 32: the scale d and (has_min) the weight's m or the activation's s.
    // Blocks of 256: d and (weights) dmin per super-block.
    std::vector<float> scale, extra;
    // k-quants, per group of 16: the weight's integer scale and minimum (Q4_K/Q5_K repeat their
    // sub-block's value over its two groups), or the activation's sum of quants.
    std::vector<int16_t> group, group_min;
};

// A weight row of n elements of a quantized type.
void unpack_weight_row(uint32_t type, const uint8_t* src, int64_t n, UnpackedRow& out);

// An activation row already quantized to Q8_0, Q8_1 or Q8_K.
void unpack_activation_row(uint32_t act_type, const uint8_t* src, int64_t n, UnpackedRow& out);

}  // namespace mome
