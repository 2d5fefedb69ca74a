// The blocked matmul Y = X * W^T, written once over a SIMD vector type `Vec` and compiled
// once per instruction set (matmul_avx512.cpp, matmul_avx2.cpp, matmul_portable.cpp, each
// with its own compiler flags). Everything here has internal linkage so the per-ISA copies
// never meet at link time.
//
// Vec provides: kWidth (floats per vector), kTokens (tokens per micro-kernel: as many
// accumulators as the register file holds for 4 weight rows), zero(), load(const float*),
// load_f16(const uint16_t*), load_bf16(const uint16_t*), fma(a, b, acc), hsum(v),
// store(float*, v).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/half.h"
#include "model/llama_weights.h"

namespace {

constexpr int kRows = 4;              // weight rows per micro-kernel
constexpr int64_t kTokenBlock = 64;   // tokens that share one conversion of a row block
constexpr int64_t kDirectTokens = 4;  // up to this many tokens, read F16/BF16 weights directly

struct F32Rows {
    const float* rows[kRows];
    template <class Vec>
    typename Vec::V load(int i, int64_t k) const { return Vec::load(rows[i] + k); }
    float at(int i, int64_t k) const { return rows[i][k]; }
};

struct F16Rows {
    const uint16_t* rows[kRows];
    template <class Vec>
    typename Vec::V load(int i, int64_t k) const { return Vec::load_f16(rows[i] + k); }
    float at(int i, int64_t k) const { return mome::f16_to_float(rows[i][k]); }
};

struct BF16Rows {
    const uint16_t* rows[kRows];
    template <class Vec>
    typename Vec::V load(int i, int64_t k) const { return Vec::load_bf16(rows[i] + k); }
    float at(int i, int64_t k) const { return mome::bf16_to_float(rows[i][k]); }
};

// out[i][j] = dot(weight row i, x[j]) for 4 rows and NT tokens.
template <class Vec, int NT, class Rows>
inline void micro_kernel(const Rows& w, const float* const* x, int64_t n, float out[kRows][Vec::kTokens]) {
    typename Vec::V acc[kRows][NT];
    for (int i = 0; i < kRows; ++i)
        for (int j = 0; j < NT; ++j) acc[i][j] = Vec::zero();
    int64_t k = 0;
    for (; k + Vec::kWidth <= n; k += Vec::kWidth) {
        typename Vec::V xv[NT];
        for (int j = 0; j < NT; ++j) xv[j] = Vec::load(x[j] + k);
        for (int i = 0; i < kRows; ++i) {
            const typename Vec::V wv = w.template load<Vec>(i, k);
            for (int j = 0; j < NT; ++j) acc[i][j] = Vec::fma(wv, xv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < kRows; ++i)
        for (int j = 0; j < NT; ++j) {
            float s = Vec::hsum(acc[i][j]);
            for (int64_t t = k; t < n; ++t) s += w.at(i, t) * x[j][t];
            out[i][j] = s;
        }
}

// Runs the micro-kernel over tokens [t0, t1) for one block of rows starting at row r.
template <class Vec, class Rows>
inline void block_times_tokens(const Rows& w, const float* X, int64_t cols, int64_t t0, int64_t t1, float* Y,
                               int64_t y_stride, int64_t r, int64_t nr) {
    for (int64_t t = t0; t < t1; t += Vec::kTokens) {
        const int64_t nt = std::min<int64_t>(Vec::kTokens, t1 - t);
        const float* x[Vec::kTokens];
        for (int j = 0; j < Vec::kTokens; ++j) x[j] = X + std::min(t + j, t1 - 1) * cols;
        float out[kRows][Vec::kTokens];
        // Exactly nt accumulators: a decode step does no wasted multiplies.
        if (nt == 1) micro_kernel<Vec, 1>(w, x, cols, out);
        else if (nt == 2 || Vec::kTokens == 2) micro_kernel<Vec, (Vec::kTokens >= 2 ? 2 : 1)>(w, x, cols, out);
        else if (nt == 3) micro_kernel<Vec, (Vec::kTokens >= 3 ? 3 : 1)>(w, x, cols, out);
        else micro_kernel<Vec, Vec::kTokens>(w, x, cols, out);
        for (int64_t j = 0; j < nt; ++j)
            for (int64_t i = 0; i < nr; ++i) Y[(t + j) * y_stride + r + i] = out[i][j];
    }
}

template <class Rows, class Elem>
Rows rows_at(const mome::Matrix& W, int64_t r, int64_t nr) {
    Rows rows{};
    for (int i = 0; i < kRows; ++i)
        rows.rows[i] = reinterpret_cast<const Elem*>(W.data) + (r + std::min<int64_t>(i, nr - 1)) * W.cols;
    return rows;
}

template <class Vec>
void convert_row(const mome::Matrix& W, int64_t r, float* dst) {
    const auto* src = reinterpret_cast<const uint16_t*>(W.data) + r * W.cols;
    int64_t k = 0;
    const bool f16 = W.type == MOME_TENSOR_TYPE_F16;
    for (; k + Vec::kWidth <= W.cols; k += Vec::kWidth) Vec::store(dst + k, f16 ? Vec::load_f16(src + k) : Vec::load_bf16(src + k));
    for (; k < W.cols; ++k) dst[k] = f16 ? mome::f16_to_float(src[k]) : mome::bf16_to_float(src[k]);
}

template <class Vec>
void matmul_rows_impl(const mome::Matrix& W, const float* X, int64_t n_tokens, float* Y, int64_t r_begin, int64_t r_end) {
    const bool f32 = W.type == MOME_TENSOR_TYPE_F32;
    if (n_tokens <= kDirectTokens || f32) {
        // Few tokens (decode): stream the weights once, converting in registers.
        for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
            const int64_t t1 = std::min(n_tokens, t0 + kTokenBlock);
            for (int64_t r = r_begin; r < r_end; r += kRows) {
                const int64_t nr = std::min<int64_t>(kRows, r_end - r);
                if (f32) block_times_tokens<Vec>(rows_at<F32Rows, float>(W, r, nr), X, W.cols, t0, t1, Y, W.rows, r, nr);
                else if (W.type == MOME_TENSOR_TYPE_F16) block_times_tokens<Vec>(rows_at<F16Rows, uint16_t>(W, r, nr), X, W.cols, t0, t1, Y, W.rows, r, nr);
                else block_times_tokens<Vec>(rows_at<BF16Rows, uint16_t>(W, r, nr), X, W.cols, t0, t1, Y, W.rows, r, nr);
            }
        }
        return;
    }
    // Many tokens (prefill): convert each block of rows to F32 once per token block.
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(kRows * W.cols));
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
        const int64_t t1 = std::min(n_tokens, t0 + kTokenBlock);
        for (int64_t r = r_begin; r < r_end; r += kRows) {
            const int64_t nr = std::min<int64_t>(kRows, r_end - r);
            F32Rows rows{};
            for (int i = 0; i < kRows; ++i) {
                if (i < nr) convert_row<Vec>(W, r + i, scratch.data() + i * W.cols);
                rows.rows[i] = scratch.data() + std::min<int64_t>(i, nr - 1) * W.cols;
            }
            block_times_tokens<Vec>(rows, X, W.cols, t0, t1, Y, W.rows, r, nr);
        }
    }
}

}  // namespace
