// The matmul kernels in plain C++ for CPUs without AVX2 (8 lanes the compiler may vectorize).
#include "cpu/matmul_kernels.h"
#include "cpu/matmul_variants.h"

namespace {
struct Vec {
    struct V {
        float lane[8];
    };
    static constexpr int64_t kWidth = 8;
    static constexpr int kTokens = 2;
    static constexpr int kDecodeRows = 4;
    static V broadcast(float a) {
        V v;
        for (float& x : v.lane) x = a;
        return v;
    }
    static V zero() { return V{}; }
    static V load(const float* p) {
        V v;
        for (int i = 0; i < 8; ++i) v.lane[i] = p[i];
        return v;
    }
    static V load_f16(const uint16_t* p) {
        V v;
        for (int i = 0; i < 8; ++i) v.lane[i] = mome::f16_to_float(p[i]);
        return v;
    }
    static V load_bf16(const uint16_t* p) {
        V v;
        for (int i = 0; i < 8; ++i) v.lane[i] = mome::bf16_to_float(p[i]);
        return v;
    }
    static V fma(V a, V b, V acc) {
        for (int i = 0; i < 8; ++i) acc.lane[i] += a.lane[i] * b.lane[i];
        return acc;
    }
    static V add(V a, V b) {
        for (int i = 0; i < 8; ++i) a.lane[i] += b.lane[i];
        return a;
    }
    static float hsum(V v) {
        float s = 0;
        for (float x : v.lane) s += x;
        return s;
    }
    static void store(float* p, V v) {
        for (int i = 0; i < 8; ++i) p[i] = v.lane[i];
    }
    static uint32_t above(const float* p, float threshold) {
        uint32_t mask = 0;
        for (int i = 0; i < 8; ++i)
            if (p[i] > threshold || !std::isfinite(p[i])) mask |= 1u << i;
        return mask;
    }
    static V round_f16(V v) {
        for (float& x : v.lane) x = mome::f16_to_float(mome::float_to_f16(x));
        return v;
    }
    static V round_bf16(V v) {
        for (float& x : v.lane) x = mome::bf16_to_float(mome::float_to_bf16(x));
        return v;
    }
};
}  // namespace

namespace mome {
void matmul_rows_portable(const Tensor& W, const float* X, int64_t n, float* Y, int64_t r0, int64_t r1) {
    matmul_rows_impl<Vec>(W, X, n, Y, r0, r1);
}
void axpy_row_portable(const Tensor& W, int64_t row, float a, float* y) { axpy_row_impl<Vec>(W, row, a, y); }
void score_keys_portable(const Tensor& K, const float* Q, int64_t nq, float* S) { score_keys_impl<Vec>(K, Q, nq, S); }
void backward_input_block_portable(const Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1) {
    backward_input_block_impl<Vec>(W, dY, dX, t0, t1, c0, c1);
}
int64_t find_above_portable(const float* s, int64_t n, float threshold) { return find_above_impl<Vec>(s, n, threshold); }
void round_activations_portable(mome_tensor_type type, const float* src, float* dst, int64_t n) {
    round_activations_impl<Vec>(type, src, dst, n);
}
}  // namespace mome
