// The screening kernel (cpu/screen.h) on AMX tiles, built with -mamx-tile -mamx-bf16 and
// AVX-512 (F, BW, VL, BF16); screen.cpp picks it only where the CPU and the OS allow it.
//
// Per group of 16 keys: the keys as the A tile (16 rows of 32 BF16 dimensions per step: read
// straight from a BF16 table whose rows are whole steps, else converted into a buffer), each
// group of 16 queries as a B tile, and up to four 16 x 16 F32 score tiles; the scores then go
// through the scan in 16-query vectors, so only the rare hits leave the kernel.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/screen.h"
#include "cpu/screen_avx512.h"

namespace mome {

namespace {

struct TileConfig {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};

// Eight tiles of 16 rows x 64 bytes, loaded on entry to each call and released on return: a
// host may use the tiles itself on the same thread (another library's kernels), so no
// configuration is assumed to survive between calls.
void configure_tiles() {
    TileConfig c;
    for (int t = 0; t < 8; ++t) {
        c.rows[t] = 16;
        c.colsb[t] = 64;
    }
    _tile_loadconfig(&c);
}

// The tile products of 16 keys (A rows: a_stride bytes apart) with every query group, into
// scores[j * lanes + query] for the 16 keys j.
void score_group(const uint16_t* a, int64_t a_stride, const ScreenQueries& q, float* scores) {
    const size_t group_stride = static_cast<size_t>(q.steps * 512);
    const int64_t lanes = q.groups * 16, row_bytes = lanes * 4;
    for (int64_t g0 = 0; g0 < q.groups; g0 += 4) {
        const int64_t ng = std::min<int64_t>(4, q.groups - g0);
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const uint16_t* b = q.pairs.data() + static_cast<size_t>(g0) * group_stride;
        for (int64_t s = 0; s < q.steps; ++s, b += 512) {
            _tile_loadd(4, a + s * 32, a_stride);
            _tile_loadd(5, b, 64);
            _tile_dpbf16ps(0, 4, 5);
            if (ng > 1) {
                _tile_loadd(6, b + group_stride, 64);
                _tile_dpbf16ps(1, 4, 6);
            }
            if (ng > 2) {
                _tile_loadd(7, b + 2 * group_stride, 64);
                _tile_dpbf16ps(2, 4, 7);
            }
            if (ng > 3) {
                _tile_loadd(5, b + 3 * group_stride, 64);
                _tile_dpbf16ps(3, 4, 5);
            }
        }
        float* out = scores + g0 * 16;
        _tile_stored(0, out, row_bytes);
        if (ng > 1) _tile_stored(1, out + 16, row_bytes);
        if (ng > 2) _tile_stored(2, out + 32, row_bytes);
        if (ng > 3) _tile_stored(3, out + 48, row_bytes);
    }
}

// Norms of 16 keys of BF16 rows (dim a multiple of 32), a_stride elements apart.
void bf16_norms(const uint16_t* a, int64_t a_stride, int64_t dim, float* norms) {
    __m512 sumsq[16];
    for (int64_t j = 0; j < 16; ++j) {
        sumsq[j] = _mm512_setzero_ps();
        for (int64_t i = 0; i < dim; i += 32) {
            const __m512i v = _mm512_loadu_si512(a + j * a_stride + i);
            sumsq[j] = _mm512_dpbf16_ps(sumsq[j], reinterpret_cast<const __m512bh&>(v), reinterpret_cast<const __m512bh&>(v));
        }
    }
    _mm512_storeu_ps(norms, _mm512_sqrt_ps(totals16(sumsq)));
}

constexpr int64_t kGroups = 4;  // key groups of 16 in a block

// One block of up to 64 keys as it goes through the three stages: prepared (norms; rows as
// the A tiles read them), scored (tile products), scanned.
struct Block {
    CacheLineVector<uint16_t> rows;  // the converted keys, [16 kGroups x padded dimensions]
    CacheLineVector<float> scores;   // [key][lanes]
    float norms[16 * kGroups];
    const uint16_t* a = nullptr;     // A rows: `rows`, or the table itself
    int64_t a_stride = 0;            // elements
    int64_t first = 0, count = 0;
};

void prepare_block(const Tensor& keys, const ScreenQueries& q, int64_t first, Block& b) {
    const int64_t dim = q.dim, padded = q.steps * 32;
    b.first = first;
    b.count = std::min<int64_t>(16 * kGroups, keys.rows - first);
    // Tiles read a BF16 table in place when its rows are whole steps on cache-line boundaries.
    if (keys.type == MOME_TENSOR_TYPE_BF16 && dim % 32 == 0 && reinterpret_cast<uintptr_t>(keys.data) % 64 == 0 && b.count == 16 * kGroups) {
        b.a = reinterpret_cast<const uint16_t*>(keys.data) + first * dim;
        b.a_stride = dim;
        for (int64_t g = 0; g < kGroups; ++g) bf16_norms(b.a + 16 * g * dim, dim, dim, b.norms + 16 * g);
        return;
    }
    b.a = b.rows.data();
    b.a_stride = padded;
    if (b.count < 16 * kGroups) std::fill(b.rows.begin(), b.rows.end(), uint16_t(0));
    for (int64_t g = 0; g * 16 < b.count; ++g) {
        __m512 sumsq[16];
        for (int64_t j = 0; j < 16; ++j) {
            const int64_t row = 16 * g + j;
            sumsq[j] = row < b.count ? convert_key(keys, first + row, dim, b.rows.data() + row * padded) : _mm512_setzero_ps();
        }
        _mm512_storeu_ps(b.norms + 16 * g, _mm512_sqrt_ps(totals16(sumsq)));
    }
}

void score_block(const ScreenQueries& q, Block& b) {
    const int64_t lanes = q.groups * 16;
    for (int64_t g = 0; g * 16 < b.count; ++g) score_group(b.a + 16 * g * b.a_stride, b.a_stride * 2, q, b.scores.data() + 16 * g * lanes);
}

// Through the scan (screen_avx512.h).
void scan_block(const Block& b, const ScreenQueries& q, const float* floors, const float* slacks, std::vector<uint16_t>& masks,
                std::vector<ScreenHit>& hits) {
    scan_scores(b.scores.data(), b.count, b.first, b.norms, q, floors, slacks, masks, hits);
}

}  // namespace

// Blocks of 64 keys in a pipeline of three: while the tiles score block t, the vector units
// scan block t - 1 and prepare block t + 1 (a tile load right after the vector stores of its
// rows, or a vector load right after the tile stores of its scores, waits for them).
void screen_block_amx(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                      std::vector<ScreenHit>& hits) {
    configure_tiles();
    const int64_t lanes = q.groups * 16;
    thread_local std::vector<uint16_t> masks;
    thread_local std::vector<float> floors, slacks;
    thread_local Block blocks[3];
    for (Block& b : blocks) {
        b.rows.resize(static_cast<size_t>(16 * kGroups * q.steps * 32));
        b.scores.resize(static_cast<size_t>(16 * kGroups * lanes));
    }
    pad_lanes(q, floor, slack, floors, slacks);
    const int64_t n_blocks = (keys.rows + 16 * kGroups - 1) / (16 * kGroups);
    for (int64_t t = 0; t < n_blocks + 2; ++t) {
        if (t < n_blocks) prepare_block(keys, q, t * 16 * kGroups, blocks[t % 3]);
        if (t >= 1 && t - 1 < n_blocks) score_block(q, blocks[(t - 1) % 3]);
        if (t >= 2) scan_block(blocks[(t - 2) % 3], q, floors.data(), slacks.data(), masks, hits);
    }
    _tile_release();
}

}  // namespace mome
