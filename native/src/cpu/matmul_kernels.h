// The blocked matmul Y = X * W^T, written once over a SIMD vector type `Vec` and compiled
// once per instruction set (matmul_avx512.cpp, matmul_avx2.cpp, matmul_portable.cpp, each
// with its own compiler flags). Everything here has internal linkage so the per-ISA copies
// never meet at link time.
//
// Vec provides: kWidth (floats per vector), kTokens (tokens per micro-kernel: as many
// accumulators as the register file holds for 4 weight rows), kDecodeRows (rows per decode
// kernel, 2 accumulators each), zero(), load(const float*),
// load_f16(const uint16_t*), load_bf16(const uint16_t*), fma(a, b, acc), add(a, b), hsum(v),
// store(float*, v).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"

namespace {

constexpr int kRows = 4;              // weight rows per micro-kernel
constexpr int64_t kTokenBlock = 64;   // tokens that share one conversion of a row block
constexpr int64_t kDirectTokens = 4;  // up to this many tokens, read F16/BF16 weights directly
constexpr int64_t kPrefetchBytes = 24 << 10;  // decode: how far below the rows in use to prefetch
constexpr int64_t kCacheLine = 64;

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

// How the decode kernel reads one storage type: a vector at p, one element at p.
struct F32Load {
    using Elem = float;
    template <class Vec>
    static typename Vec::V load(const float* p) { return Vec::load(p); }
    static float at(const float* p) { return *p; }
};
struct F16Load {
    using Elem = uint16_t;
    template <class Vec>
    static typename Vec::V load(const uint16_t* p) { return Vec::load_f16(p); }
    static float at(const uint16_t* p) { return mome::f16_to_float(*p); }
};
struct BF16Load {
    using Elem = uint16_t;
    template <class Vec>
    static typename Vec::V load(const uint16_t* p) { return Vec::load_bf16(p); }
    static float at(const uint16_t* p) { return mome::bf16_to_float(*p); }
};

// out[i] = dot(row i, x) for NR consecutive rows (row i at w + i * stride) and one token
// (decode). Every weight comes from memory once, so the loop keeps many loads in flight:
// 2 vectors of each row per step into 2 NR independent accumulators, while the rows
// `ahead` elements further on are prefetched at the same offset, one cache line at a time.
// The hardware prefetcher alone leaves a core at about half of its read bandwidth on rows
// this short; NR = 8 (AVX-512) halves the per-row overhead of short F16 rows.
template <class Vec, class L, int NR>
inline void matvec_kernel(const typename L::Elem* w, int64_t stride, int64_t ahead, const float* x, int64_t n, float* out) {
    using V = typename Vec::V;
    constexpr int64_t kStep = 2 * Vec::kWidth;
    constexpr int64_t kStepBytes = kStep * static_cast<int64_t>(sizeof(typename L::Elem));
    V acc[NR][2];
    for (int i = 0; i < NR; ++i) acc[i][0] = acc[i][1] = Vec::zero();
    int64_t k = 0;
    for (; k + kStep <= n; k += kStep) {
        for (int i = 0; i < NR; ++i)
            for (int64_t b = 0; b < kStepBytes; b += kCacheLine)
                __builtin_prefetch(reinterpret_cast<const char*>(w + i * stride + ahead + k) + b);
        const V x0 = Vec::load(x + k), x1 = Vec::load(x + k + Vec::kWidth);
        for (int i = 0; i < NR; ++i) {
            acc[i][0] = Vec::fma(L::template load<Vec>(w + i * stride + k), x0, acc[i][0]);
            acc[i][1] = Vec::fma(L::template load<Vec>(w + i * stride + k + Vec::kWidth), x1, acc[i][1]);
        }
    }
    if (k + Vec::kWidth <= n) {
        const V x0 = Vec::load(x + k);
        for (int i = 0; i < NR; ++i) acc[i][0] = Vec::fma(L::template load<Vec>(w + i * stride + k), x0, acc[i][0]);
        k += Vec::kWidth;
    }
    for (int i = 0; i < NR; ++i) {
        float s = Vec::hsum(Vec::add(acc[i][0], acc[i][1]));
        for (int64_t t = k; t < n; ++t) s += L::at(w + i * stride + t) * x[t];
        out[i] = s;
    }
}

// Rows [r_begin, r_end) of y = W x for one token: Vec::kDecodeRows rows at a time, the last
// few one by one. The prefetch runs about kPrefetchBytes ahead (long rows: the next group),
// never past r_end: the rows after it are another thread's, and lines fetched for them
// would land in the wrong core's cache.
template <class Vec, class L>
void matvec_rows(const mome::Tensor& W, const float* x, float* y, int64_t r_begin, int64_t r_end) {
    constexpr int NR = Vec::kDecodeRows;
    using Elem = typename L::Elem;
    const Elem* base = reinterpret_cast<const Elem*>(W.data);
    const int64_t row_bytes = W.cols * static_cast<int64_t>(sizeof(Elem));
    const int64_t rows_ahead = std::max<int64_t>(NR, kPrefetchBytes / row_bytes);  // past the rows in use
    int64_t r = r_begin;
    for (; r + NR <= r_end; r += NR) {
        const int64_t ahead = std::min(rows_ahead, r_end - NR - r) * W.cols;
        matvec_kernel<Vec, L, NR>(base + r * W.cols, W.cols, ahead, x, W.cols, y + r);
    }
    for (; r < r_end; ++r) matvec_kernel<Vec, L, 1>(base + r * W.cols, W.cols, 0, x, W.cols, y + r);
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
Rows rows_at(const mome::Tensor& W, int64_t r, int64_t nr) {
    Rows rows{};
    for (int i = 0; i < kRows; ++i)
        rows.rows[i] = reinterpret_cast<const Elem*>(W.data) + (r + std::min<int64_t>(i, nr - 1)) * W.cols;
    return rows;
}

template <class Vec>
void convert_row(const mome::Tensor& W, int64_t r, float* dst) {
    const auto* src = reinterpret_cast<const uint16_t*>(W.data) + r * W.cols;
    int64_t k = 0;
    const bool f16 = W.type == MOME_TENSOR_TYPE_F16;
    for (; k + Vec::kWidth <= W.cols; k += Vec::kWidth) Vec::store(dst + k, f16 ? Vec::load_f16(src + k) : Vec::load_bf16(src + k));
    for (; k < W.cols; ++k) dst[k] = f16 ? mome::f16_to_float(src[k]) : mome::bf16_to_float(src[k]);
}

// Many tokens (AVX-512; F32, F16 or BF16 weights): rows [r0, r0 + 32) of W are packed once,
// converted to float and transposed into panel[k][32], and each tile of NT tokens x 32 rows
// keeps its 2 NT accumulators in registers while k runs: every weight vector loaded serves NT
// tokens, every token's element (broadcast) 32 rows, and no horizontal sums are needed. k runs
// in blocks of kPackedBlock, each block's sums added to Y's (the rounding error grows with the
// block, not with all of k).
constexpr int64_t kPanelRows = 32;
constexpr int kPackedTokens = 8;
constexpr int64_t kPackedBlock = 128;
constexpr int64_t kPackedMinTokens = 8;  // fewer tokens (or rows: a LoRA's rank) and packing costs more than it saves

template <class Vec, int NT>
inline void packed_tile(const float* panel, const float* X, int64_t cols, int64_t t, float* Y, int64_t y_stride, int64_t r,
                        int64_t nr) {
    using V = typename Vec::V;
    float out[NT][kPanelRows];
    for (int64_t k0 = 0; k0 < cols; k0 += kPackedBlock) {
        const int64_t k1 = std::min(cols, k0 + kPackedBlock);
        V acc[NT][2];
        for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = Vec::zero();
        for (int64_t k = k0; k < k1; ++k) {
            const V w0 = Vec::load(panel + k * kPanelRows), w1 = Vec::load(panel + k * kPanelRows + Vec::kWidth);
            for (int j = 0; j < NT; ++j) {
                const V b = Vec::broadcast(X[(t + j) * cols + k]);
                acc[j][0] = Vec::fma(b, w0, acc[j][0]);
                acc[j][1] = Vec::fma(b, w1, acc[j][1]);
            }
        }
        for (int j = 0; j < NT; ++j) {
            if (k0 == 0) {
                Vec::store(out[j], acc[j][0]);
                Vec::store(out[j] + Vec::kWidth, acc[j][1]);
            } else {
                Vec::store(out[j], Vec::add(Vec::load(out[j]), acc[j][0]));
                Vec::store(out[j] + Vec::kWidth, Vec::add(Vec::load(out[j] + Vec::kWidth), acc[j][1]));
            }
        }
    }
    for (int j = 0; j < NT; ++j)
        for (int64_t i = 0; i < nr; ++i) Y[(t + j) * y_stride + r + i] = out[j][i];
}

template <class Vec, int NT>
inline void packed_tail(const float* panel, const float* X, int64_t cols, int64_t t, int64_t left, float* Y, int64_t y_stride,
                        int64_t r, int64_t nr) {
    if constexpr (NT > 0) {
        if (left == NT) return packed_tile<Vec, NT>(panel, X, cols, t, Y, y_stride, r, nr);
        packed_tail<Vec, NT - 1>(panel, X, cols, t, left, Y, y_stride, r, nr);
    }
}

// Transposes 16 rows x 16 columns starting at column k of the panel's rows into
// panel[(k + j) * kPanelRows + i0 + i] (Vec::transpose16: the vectors of a 16 x 16 block).
template <class Vec, class L>
inline void pack_block16(const typename L::Elem* const* rows, int64_t k, float* panel, int64_t i0) {
    typename Vec::V v[16];
    for (int i = 0; i < 16; ++i) v[i] = L::template load<Vec>(rows[i0 + i] + k);
    Vec::transpose16(v);
    for (int j = 0; j < 16; ++j) Vec::store(panel + (k + j) * kPanelRows + i0, v[j]);
}

// F32, F16 or BF16 rows [r0, r0 + 32) of W converted to float and transposed into the panel:
// 16 x 16 blocks in registers, the last cols % 16 columns one by one.
template <class Vec, class L>
void pack_panel(const mome::Tensor& W, int64_t r, int64_t nr, float* panel) {
    using Elem = typename L::Elem;
    const Elem* rows[kPanelRows];
    for (int64_t i = 0; i < kPanelRows; ++i)  // a short panel repeats its last row
        rows[i] = reinterpret_cast<const Elem*>(W.data) + (r + std::min(i, nr - 1)) * W.cols;
    int64_t k = 0;
    for (; k + 16 <= W.cols; k += 16) {
        pack_block16<Vec, L>(rows, k, panel, 0);
        pack_block16<Vec, L>(rows, k, panel, 16);
    }
    for (; k < W.cols; ++k)
        for (int64_t i = 0; i < kPanelRows; ++i) panel[k * kPanelRows + i] = L::at(rows[i] + k);
}

template <class Vec>
void packed_rows(const mome::Tensor& W, const float* X, int64_t n_tokens, float* Y, int64_t r_begin, int64_t r_end) {
    static_assert(2 * Vec::kWidth == kPanelRows, "a panel is two vectors of rows");
    thread_local std::vector<float> panel;
    panel.resize(static_cast<size_t>(W.cols * kPanelRows));
    for (int64_t r = r_begin; r < r_end; r += kPanelRows) {
        const int64_t nr = std::min(kPanelRows, r_end - r);
        if (W.type == MOME_TENSOR_TYPE_F32) pack_panel<Vec, F32Load>(W, r, nr, panel.data());
        else if (W.type == MOME_TENSOR_TYPE_F16) pack_panel<Vec, F16Load>(W, r, nr, panel.data());
        else pack_panel<Vec, BF16Load>(W, r, nr, panel.data());
        int64_t t = 0;
        for (; t + kPackedTokens <= n_tokens; t += kPackedTokens)
            packed_tile<Vec, kPackedTokens>(panel.data(), X, W.cols, t, Y, W.rows, r, nr);
        if (t < n_tokens) packed_tail<Vec, kPackedTokens - 1>(panel.data(), X, W.cols, t, n_tokens - t, Y, W.rows, r, nr);
    }
}

template <class Vec>
void matmul_rows_impl(const mome::Tensor& W, const float* X, int64_t n_tokens, float* Y, int64_t r_begin, int64_t r_end) {
    const bool f32 = W.type == MOME_TENSOR_TYPE_F32;
    if (n_tokens == 1) {
        if (f32) matvec_rows<Vec, F32Load>(W, X, Y, r_begin, r_end);
        else if (W.type == MOME_TENSOR_TYPE_F16) matvec_rows<Vec, F16Load>(W, X, Y, r_begin, r_end);
        else matvec_rows<Vec, BF16Load>(W, X, Y, r_begin, r_end);
        return;
    }
    if constexpr (2 * Vec::kWidth == kPanelRows) {
        if (n_tokens >= kPackedMinTokens && r_end - r_begin >= kPanelRows / 2) return packed_rows<Vec>(W, X, n_tokens, Y, r_begin, r_end);
    }
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

namespace {

// y[0..n) += a * W[row][0..n), W in any storage type (the grouped LoRA's B side).
template <class Vec>
void axpy_row_impl(const mome::Tensor& W, int64_t row, float a, float* y) {
    const int64_t n = W.cols;
    const typename Vec::V av = Vec::broadcast(a);
    int64_t k = 0;
    if (W.type == MOME_TENSOR_TYPE_F32) {
        const float* w = reinterpret_cast<const float*>(W.data) + row * n;
        for (; k + Vec::kWidth <= n; k += Vec::kWidth) Vec::store(y + k, Vec::fma(av, Vec::load(w + k), Vec::load(y + k)));
        for (; k < n; ++k) y[k] += a * w[k];
        return;
    }
    const uint16_t* w = reinterpret_cast<const uint16_t*>(W.data) + row * n;
    const bool f16 = W.type == MOME_TENSOR_TYPE_F16;
    for (; k + Vec::kWidth <= n; k += Vec::kWidth)
        Vec::store(y + k, Vec::fma(av, f16 ? Vec::load_f16(w + k) : Vec::load_bf16(w + k), Vec::load(y + k)));
    for (; k < n; ++k) y[k] += a * (f16 ? mome::f16_to_float(w[k]) : mome::bf16_to_float(w[k]));
}

}  // namespace

namespace {

// dX[t][c] += sum over rows [r0, r1) of W of dY[t][r] W[r][c], for NT tokens (dY rows of
// W.rows, dX rows of W.cols) and the CV vectors of columns from c: the accumulators stay in
// registers while the rows of W stream by, each element summing over r in order.
template <class Vec, class L, int NT, int CV>
inline void backward_input_tile(const typename L::Elem* w, int64_t rows, int64_t cols, const float* dy, float* dx, int64_t c, int64_t r0,
                                int64_t r1) {
    using V = typename Vec::V;
    V acc[NT][CV];
    for (int t = 0; t < NT; ++t)
        for (int v = 0; v < CV; ++v) acc[t][v] = Vec::load(dx + t * cols + c + v * Vec::kWidth);
    for (int64_t r = r0; r < r1; ++r) {
        V wv[CV];
        for (int v = 0; v < CV; ++v) wv[v] = L::template load<Vec>(w + r * cols + c + v * Vec::kWidth);
        for (int t = 0; t < NT; ++t) {
            const V g = Vec::broadcast(dy[t * rows + r]);
            for (int v = 0; v < CV; ++v) acc[t][v] = Vec::fma(g, wv[v], acc[t][v]);
        }
    }
    for (int t = 0; t < NT; ++t)
        for (int v = 0; v < CV; ++v) Vec::store(dx + t * cols + c + v * Vec::kWidth, acc[t][v]);
}

// Columns [c0, c1) of NT tokens over rows [r0, r1): blocks of 4 vectors, then single vectors,
// then one by one.
template <class Vec, class L, int NT>
inline void backward_input_tokens(const typename L::Elem* w, int64_t rows, int64_t cols, const float* dy, float* dx, int64_t c0,
                                  int64_t c1, int64_t r0, int64_t r1) {
    int64_t c = c0;
    for (; c + 4 * Vec::kWidth <= c1; c += 4 * Vec::kWidth) backward_input_tile<Vec, L, NT, 4>(w, rows, cols, dy, dx, c, r0, r1);
    for (; c + Vec::kWidth <= c1; c += Vec::kWidth) backward_input_tile<Vec, L, NT, 1>(w, rows, cols, dy, dx, c, r0, r1);
    for (; c < c1; ++c)
        for (int t = 0; t < NT; ++t) {
            float s = dx[t * cols + c];
            for (int64_t r = r0; r < r1; ++r) s += dy[t * rows + r] * L::at(w + r * cols + c);
            dx[t * cols + c] = s;
        }
}

// Rows of W in blocks of kBackwardRows, each block's slice of W (at most kBackwardRows x the
// block's columns) reused from cache by every token before the next: summing each element
// over r in order all the same (its partial sum waits in dX between blocks).
constexpr int64_t kBackwardRows = 256;

template <class Vec, class L>
void backward_input_block_typed(const mome::Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1) {
    constexpr int NT = Vec::kTokens;
    const auto* w = reinterpret_cast<const typename L::Elem*>(W.data);
    for (int64_t r0 = 0; r0 < W.rows; r0 += kBackwardRows) {
        const int64_t r1 = std::min(W.rows, r0 + kBackwardRows);
        int64_t t = t0;
        for (; t + NT <= t1; t += NT)
            backward_input_tokens<Vec, L, NT>(w, W.rows, W.cols, dY + t * W.rows, dX + t * W.cols, c0, c1, r0, r1);
        for (; t < t1; ++t) backward_input_tokens<Vec, L, 1>(w, W.rows, W.cols, dY + t * W.rows, dX + t * W.cols, c0, c1, r0, r1);
    }
}

// dX[t][c] += sum_r dY[t][r] W[r][c] for tokens [t0, t1) and columns [c0, c1) of an F32, F16
// or BF16 W (the input gradient of Y = X W^T).
template <class Vec>
void backward_input_block_impl(const mome::Tensor& W, const float* dY, float* dX, int64_t t0, int64_t t1, int64_t c0, int64_t c1) {
    if (W.type == MOME_TENSOR_TYPE_F32) backward_input_block_typed<Vec, F32Load>(W, dY, dX, t0, t1, c0, c1);
    else if (W.type == MOME_TENSOR_TYPE_F16) backward_input_block_typed<Vec, F16Load>(W, dY, dX, t0, t1, c0, c1);
    else backward_input_block_typed<Vec, BF16Load>(W, dY, dX, t0, t1, c0, c1);
}

}  // namespace

namespace {

// S[q][j] = dot(Q[q], key j) for the nk <= 4 W keys transposed in kt ([d x 4 W]) and every
// query q < nq; S rows are s_stride apart.
template <class Vec>
void score_key_block(const float* kt, const float* Q, int64_t nq, int64_t d, float* S, int64_t s_stride, int64_t nk) {
    constexpr int64_t W = Vec::kWidth, kKeys = 4 * W;
    constexpr int kQueries = Vec::kTokens;
    for (int64_t q0 = 0; q0 < nq; q0 += kQueries) {
        const float* q[kQueries];
        for (int qq = 0; qq < kQueries; ++qq) q[qq] = Q + std::min<int64_t>(q0 + qq, nq - 1) * d;
        typename Vec::V acc[kQueries][4];
        for (int qq = 0; qq < kQueries; ++qq)
            for (int v = 0; v < 4; ++v) acc[qq][v] = Vec::zero();
        for (int64_t i = 0; i < d; ++i) {
            const float* row = kt + i * kKeys;
            const typename Vec::V k0 = Vec::load(row), k1 = Vec::load(row + W), k2 = Vec::load(row + 2 * W), k3 = Vec::load(row + 3 * W);
            for (int qq = 0; qq < kQueries; ++qq) {
                const typename Vec::V b = Vec::broadcast(q[qq][i]);
                acc[qq][0] = Vec::fma(k0, b, acc[qq][0]);
                acc[qq][1] = Vec::fma(k1, b, acc[qq][1]);
                acc[qq][2] = Vec::fma(k2, b, acc[qq][2]);
                acc[qq][3] = Vec::fma(k3, b, acc[qq][3]);
            }
        }
        float tmp[kKeys];
        for (int qq = 0; qq < kQueries && q0 + qq < nq; ++qq) {
            for (int v = 0; v < 4; ++v) Vec::store(tmp + v * W, acc[qq][v]);
            std::copy(tmp, tmp + nk, S + (q0 + qq) * s_stride);
        }
    }
}

// Keys [j0, j0 + 64) of K (d a multiple of 16) into kt[i * 64 + j], by 16 x 16 transposes:
// the AVX-512 variant's fast path (Vec::transpose16).
template <class Vec, class L>
void pack_keys16(const mome::Tensor& K, int64_t j0, float* kt) {
    constexpr int64_t kKeys = 64;
    const auto* base = reinterpret_cast<const typename L::Elem*>(K.data);
    for (int64_t g = 0; g < kKeys; g += 16)
        for (int64_t i = 0; i < K.cols; i += 16) {
            typename Vec::V v[16];
            for (int j = 0; j < 16; ++j) v[j] = L::template load<Vec>(base + (j0 + g + j) * K.cols + i);
            Vec::transpose16(v);
            for (int c = 0; c < 16; ++c) Vec::store(kt + (i + c) * kKeys + g, v[c]);
        }
}

// S[q][j] = dot(Q[q], K[j]) for all keys j of K and queries q < nq: the router's scores
// for a batch of queries. Blocks of 4 vectors of keys are transposed (and converted to F32)
// once, so each accumulator holds scores of consecutive keys and needs no horizontal sum;
// every query element is broadcast against 4 vectors of keys.
template <class Vec>
void score_keys_impl(const mome::Tensor& K, const float* Q, int64_t nq, float* S) {
    constexpr int64_t W = Vec::kWidth, kKeys = 4 * W;
    const int64_t d = K.cols;
    thread_local std::vector<float> kt;  // [d x kKeys]: column j holds key j0 + j
    kt.resize(static_cast<size_t>(d * kKeys));
    for (int64_t j0 = 0; j0 < K.rows; j0 += kKeys) {
        const int64_t nk = std::min(kKeys, K.rows - j0);
        if constexpr (W == 16) {
            if (nk == kKeys && d % 16 == 0) {  // whole blocks: 16 x 16 transposes in registers
                if (K.type == MOME_TENSOR_TYPE_F32) pack_keys16<Vec, F32Load>(K, j0, kt.data());
                else if (K.type == MOME_TENSOR_TYPE_F16) pack_keys16<Vec, F16Load>(K, j0, kt.data());
                else pack_keys16<Vec, BF16Load>(K, j0, kt.data());
                score_key_block<Vec>(kt.data(), Q, nq, d, S + j0, K.rows, nk);
                continue;
            }
        }
        std::fill(kt.begin(), kt.end(), 0.0f);
        for (int64_t j = 0; j < nk; ++j) {
            if (K.type == MOME_TENSOR_TYPE_F32) {
                const float* src = reinterpret_cast<const float*>(K.data) + (j0 + j) * d;
                for (int64_t i = 0; i < d; ++i) kt[static_cast<size_t>(i * kKeys + j)] = src[i];
            } else {
                const uint16_t* src = reinterpret_cast<const uint16_t*>(K.data) + (j0 + j) * d;
                const bool f16 = K.type == MOME_TENSOR_TYPE_F16;
                for (int64_t i = 0; i < d; ++i)
                    kt[static_cast<size_t>(i * kKeys + j)] = f16 ? mome::f16_to_float(src[i]) : mome::bf16_to_float(src[i]);
            }
        }
        score_key_block<Vec>(kt.data(), Q, nq, d, S + j0, K.rows, nk);
    }
}

}  // namespace

namespace {

// dst[0..n) = src[0..n) rounded to F16 or BF16 and back, element by element as
// round_activations_like_weights does (Vec::round_f16 / round_bf16 on whole vectors).
template <class Vec>
void round_activations_impl(mome_tensor_type type, const float* src, float* dst, int64_t n) {
    const bool f16 = type == MOME_TENSOR_TYPE_F16;
    int64_t i = 0;
    for (; i + Vec::kWidth <= n; i += Vec::kWidth) {
        const typename Vec::V x = Vec::load(src + i);
        Vec::store(dst + i, f16 ? Vec::round_f16(x) : Vec::round_bf16(x));
    }
    for (; i < n; ++i) dst[i] = f16 ? mome::f16_to_float(mome::float_to_f16(src[i])) : mome::bf16_to_float(mome::float_to_bf16(src[i]));
}

}  // namespace

namespace {

// find_above (matmul_variants.h): Vec::above(p, threshold) is a bit mask of the lanes of p
// holding a score above the threshold or a non-finite one.
template <class Vec>
int64_t find_above_impl(const float* s, int64_t n, float threshold) {
    int64_t i = 0;
    for (; i + Vec::kWidth <= n; i += Vec::kWidth)
        if (const uint32_t mask = Vec::above(s + i, threshold)) return i + __builtin_ctz(mask);
    for (; i < n; ++i)
        if (s[i] > threshold || !std::isfinite(s[i])) return i;
    return n;
}

}  // namespace
