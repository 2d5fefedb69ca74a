// Fast Y = X * W^T on the CPU: rows of W in blocks of 4 (converted once to F32 when stored
// as F16/BF16), tokens in pairs, 8 accumulators of 8 lanes (AVX2 + FMA), rows spread over
// threads. A portable path covers CPUs without AVX2. Checked against matmul_ref.
#include <algorithm>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "core/half.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace mome {

namespace {

constexpr int64_t kRowBlock = 4;
constexpr int64_t kRowsPerChunk = 32;
constexpr int64_t kTokenBlock = 32;

bool cpu_has_avx2() {
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }();
    return has;
}

// F32 copies of up to 4 rows; missing rows repeat the last one (their results are dropped).
struct RowBlock {
    const float* rows[kRowBlock];
};

__attribute__((target("avx2,fma,f16c"))) void convert_row_avx2(const Matrix& W, int64_t r, float* dst) {
    const int64_t n = W.cols;
    int64_t k = 0;
    if (W.type == MOME_TENSOR_TYPE_F16) {
        const auto* src = reinterpret_cast<const uint16_t*>(W.data) + r * n;
        for (; k + 8 <= n; k += 8)
            _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
        for (; k < n; ++k) dst[k] = f16_to_float(src[k]);
    } else {
        const auto* src = reinterpret_cast<const uint16_t*>(W.data) + r * n;
        for (; k + 8 <= n; k += 8) {
            const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k)));
            _mm256_storeu_ps(dst + k, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
        }
        for (; k < n; ++k) dst[k] = bf16_to_float(src[k]);
    }
}

__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Dot products of 4 weight rows with `nt` (1 or 2) token vectors.
template <int NT>
__attribute__((target("avx2,fma"))) void kernel_avx2(const RowBlock& w, const float* const* x, int64_t n, float out[kRowBlock][2]) {
    __m256 acc[kRowBlock][NT];
    for (int i = 0; i < kRowBlock; ++i)
        for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 xv[NT];
        for (int j = 0; j < NT; ++j) xv[j] = _mm256_loadu_ps(x[j] + k);
        for (int i = 0; i < kRowBlock; ++i) {
            const __m256 wv = _mm256_loadu_ps(w.rows[i] + k);
            for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < kRowBlock; ++i)
        for (int j = 0; j < NT; ++j) {
            float s = hsum(acc[i][j]);
            for (int64_t t = k; t < n; ++t) s += w.rows[i][t] * x[j][t];
            out[i][j] = s;
        }
}

template <int NT>
void kernel_portable(const RowBlock& w, const float* const* x, int64_t n, float out[kRowBlock][2]) {
    for (int i = 0; i < kRowBlock; ++i)
        for (int j = 0; j < NT; ++j) {
            float lanes[8] = {};
            int64_t k = 0;
            for (; k + 8 <= n; k += 8)
                for (int l = 0; l < 8; ++l) lanes[l] += w.rows[i][k + l] * x[j][k + l];
            float s = 0;
            for (float l : lanes) s += l;
            for (; k < n; ++k) s += w.rows[i][k] * x[j][k];
            out[i][j] = s;
        }
}

void convert_row_portable(const Matrix& W, int64_t r, float* dst) {
    for (int64_t k = 0; k < W.cols; ++k) dst[k] = weight_at(W, r, k);
}

void matmul_rows(const Matrix& W, const float* X, int64_t n_tokens, float* Y, int64_t r_begin, int64_t r_end) {
    const bool avx2 = cpu_has_avx2();
    thread_local std::vector<float> scratch;
    if (W.type != MOME_TENSOR_TYPE_F32) scratch.resize(static_cast<size_t>(kRowBlock * W.cols));
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
        const int64_t t1 = std::min(n_tokens, t0 + kTokenBlock);
        for (int64_t r = r_begin; r < r_end; r += kRowBlock) {
            const int64_t nr = std::min(kRowBlock, r_end - r);
            RowBlock block{};
            for (int64_t i = 0; i < kRowBlock; ++i) {
                const int64_t row = r + std::min(i, nr - 1);
                if (W.type == MOME_TENSOR_TYPE_F32) {
                    block.rows[i] = reinterpret_cast<const float*>(W.data) + row * W.cols;
                } else {
                    float* dst = scratch.data() + i * W.cols;
                    if (i < nr) avx2 ? convert_row_avx2(W, row, dst) : convert_row_portable(W, row, dst);
                    block.rows[i] = i < nr ? dst : block.rows[nr - 1];
                }
            }
            for (int64_t t = t0; t < t1; t += 2) {
                const float* x[2] = {X + t * W.cols, X + std::min(t + 1, t1 - 1) * W.cols};
                float out[kRowBlock][2];
                const bool pair = t + 1 < t1;
                if (avx2) pair ? kernel_avx2<2>(block, x, W.cols, out) : kernel_avx2<1>(block, x, W.cols, out);
                else pair ? kernel_portable<2>(block, x, W.cols, out) : kernel_portable<1>(block, x, W.cols, out);
                for (int64_t i = 0; i < nr; ++i) {
                    Y[t * W.rows + r + i] = out[i][0];
                    if (pair) Y[(t + 1) * W.rows + r + i] = out[i][1];
                }
            }
        }
    }
}

}  // namespace

void matmul_fast(const Matrix& W, const float* X, int64_t n_tokens, float* Y, ThreadPool& pool) {
    const int64_t n_chunks = (W.rows + kRowsPerChunk - 1) / kRowsPerChunk;
    pool.run(n_chunks, [&](int64_t chunk) {
        const int64_t r0 = chunk * kRowsPerChunk;
        matmul_rows(W, X, n_tokens, Y, r0, std::min(W.rows, r0 + kRowsPerChunk));
    });
}

}  // namespace mome
