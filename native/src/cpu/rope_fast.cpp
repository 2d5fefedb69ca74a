// rope_fast and rope_backward_fast: the reference's RoPE (rope_angles, then each row's
// rotation) over a batch. A batch of sequences repeats its positions (every fact starts at
// 0), so the angles of each position in the batch's range are computed once, not once per
// row and again for the keys; the rows spread over the pool. The same functions compute the
// same floats: the result is the reference's to the bit (tests/native/ops_test.cpp).
#include <algorithm>
#include <vector>

#include "cpu/ops.h"
#include "cpu/ops_backward.h"
#include "cpu/thread_pool.h"

namespace mome {

namespace {

constexpr int64_t kRowsPerChunk = 32;

// Rotates each row r by the angles of pos[r] (rotate(row, cos, sin)).
template <class Rotate>
void rope_rows(float* x, int64_t rows, int64_t row_floats, const int32_t* pos, const RopeParams& p, ThreadPool& pool,
               const Rotate& rotate) {
    if (rows <= 0) return;
    const int64_t half = p.n_rot / 2, chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
    const auto [lo, hi] = std::minmax_element(pos, pos + rows);
    const int64_t first = *lo, span = static_cast<int64_t>(*hi) - first + 1;
    if (span > rows) {  // positions spread wider than the rows: each row's own angles
        pool.run(chunks, [&](int64_t c) {
            std::vector<float> angles(static_cast<size_t>(2 * half));
            for (int64_t r = c * kRowsPerChunk; r < std::min(rows, (c + 1) * kRowsPerChunk); ++r) {
                rope_angles(pos[r], p, angles.data(), angles.data() + half);
                rotate(x + r * row_floats, angles.data(), angles.data() + half);
            }
        });
        return;
    }
    std::vector<float> table(static_cast<size_t>(2 * half * span));  // per position: cos, then sin
    pool.run((span + kRowsPerChunk - 1) / kRowsPerChunk, [&](int64_t c) {
        for (int64_t q = c * kRowsPerChunk; q < std::min(span, (c + 1) * kRowsPerChunk); ++q)
            rope_angles(static_cast<int32_t>(first + q), p, table.data() + q * 2 * half, table.data() + q * 2 * half + half);
    });
    pool.run(chunks, [&](int64_t c) {
        for (int64_t r = c * kRowsPerChunk; r < std::min(rows, (c + 1) * kRowsPerChunk); ++r) {
            const float* angles = table.data() + (pos[r] - first) * 2 * half;
            rotate(x + r * row_floats, angles, angles + half);
        }
    });
}

}  // namespace

void rope_fast(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p, ThreadPool& pool) {
    rope_rows(x, rows, n_heads * head_dim, pos, p, pool, [&](float* row, const float* c, const float* s) {
        rope_rotate(row, n_heads, head_dim, p.n_rot, c, s);
    });
}

void rope_backward_fast(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p,
                        ThreadPool& pool) {
    rope_rows(dx, rows, n_heads * head_dim, pos, p, pool, [&](float* row, const float* c, const float* s) {
        rope_backward_rotate(row, n_heads, head_dim, p.n_rot, c, s);
    });
}

}  // namespace mome
