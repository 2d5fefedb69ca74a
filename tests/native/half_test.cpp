// F16/BF16 conversions checked exhaustively against the definition of the formats.
#include <cmath>
#include <gtest/gtest.h>

#include "core/half.h"

using namespace mome;

namespace {
// The value a half encodes, from its definition (sign, 5-bit exponent, 10-bit fraction).
double half_value(uint16_t h) {
    const int sign = (h >> 15) ? -1 : 1;
    const int exponent = (h >> 10) & 0x1f;
    const int fraction = h & 0x3ff;
    if (exponent == 0) return sign * std::ldexp(fraction, -24);
    if (exponent == 31) return fraction ? NAN : sign * INFINITY;
    return sign * std::ldexp(1024 + fraction, exponent - 25);
}
}  // namespace

TEST(Half, EveryHalfDecodesToItsValueAndRoundTrips) {
    for (uint32_t h = 0; h < 65536; ++h) {
        const double expected = half_value(static_cast<uint16_t>(h));
        const float f = f16_to_float(static_cast<uint16_t>(h));
        if (std::isnan(expected)) {
            EXPECT_TRUE(std::isnan(f)) << h;
            continue;
        }
        ASSERT_EQ(static_cast<double>(f), expected) << "half 0x" << std::hex << h;
        ASSERT_EQ(float_to_f16(f), h) << "half 0x" << std::hex << h;
    }
}

TEST(Half, FloatToHalfRoundsToNearestEven) {
    // Walk floats across the whole half range and compare with the nearest half found by
    // brute force over all finite halves of the same sign.
    for (float x = 1e-8f; x < 70000.0f; x *= 1.0137f) {
        for (float v : {x, -x}) {
            const uint16_t got = float_to_f16(v);
            double best = INFINITY;
            uint16_t best_h = 0;
            for (uint32_t h = (v < 0 ? 0x8000u : 0u); h < (v < 0 ? 0xfc00u : 0x7c00u); ++h) {
                const double d = std::fabs(half_value(static_cast<uint16_t>(h)) - v);
                if (d < best || (d == best && (h & 1u) == 0)) best = d, best_h = static_cast<uint16_t>(h);
            }
            if (std::fabs(v) >= 65520.0f) best_h = v < 0 ? 0xfc00 : 0x7c00;  // overflow to infinity
            ASSERT_EQ(got, best_h) << v;
        }
    }
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNaN) {
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
    // 1 + 2^-8 is exactly between two bf16 values: ties go to the even one (1.0).
    EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
    // 1 + 3*2^-8 is a tie between 1+2^-7 (odd) and 1+2^-6 (even).
    EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
    EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
    for (uint32_t b = 0; b < 65536; ++b) {
        const float f = bf16_to_float(static_cast<uint16_t>(b));
        if (!std::isnan(f)) ASSERT_EQ(float_to_bf16(f), b);
    }
}
