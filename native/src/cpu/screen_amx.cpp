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

// Row j of a key block into 32-dimension steps of BF16 at dst (zero past dim); returns the
// lanes of the F32 sum of squares of the key as stored.
__m512 convert_key(const Tensor& keys, int64_t j, int64_t dim, uint16_t* dst) {
    __m512 sumsq = _mm512_setzero_ps();
    for (int64_t i = 0; i < dim; i += 32) {
        const int64_t left = std::min<int64_t>(32, dim - i);
        const __mmask32 m32 = left == 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
        __m512i packed;
        if (keys.type == MOME_TENSOR_TYPE_BF16) {
            packed = _mm512_maskz_loadu_epi16(m32, reinterpret_cast<const uint16_t*>(keys.data) + j * dim + i);
            sumsq = _mm512_dpbf16_ps(sumsq, reinterpret_cast<__m512bh&>(packed), reinterpret_cast<__m512bh&>(packed));
        } else {
            const __mmask16 lo_mask = static_cast<__mmask16>(m32), hi_mask = static_cast<__mmask16>(m32 >> 16);
            __m512 lo, hi;
            if (keys.type == MOME_TENSOR_TYPE_F32) {
                const float* src = reinterpret_cast<const float*>(keys.data) + j * dim + i;
                lo = _mm512_maskz_loadu_ps(lo_mask, src);
                hi = _mm512_maskz_loadu_ps(hi_mask, src + 16);
            } else {
                const uint16_t* src = reinterpret_cast<const uint16_t*>(keys.data) + j * dim + i;
                lo = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lo_mask, src));
                hi = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(hi_mask, src + 16));
            }
            sumsq = _mm512_fmadd_ps(lo, lo, _mm512_fmadd_ps(hi, hi, sumsq));
            const __m512bh bf = _mm512_cvtne2ps_pbh(hi, lo);
            packed = reinterpret_cast<const __m512i&>(bf);
        }
        _mm512_storeu_si512(dst + i, packed);
    }
    return sumsq;
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

// The 16 lane totals of v[0..16) as one vector, element j the total of v[j]: pairs of vectors
// folded in halves four times (each fold adds the two halves of both and keeps them side by
// side), then the elements put back in order.
__m512 totals16(__m512 v[16]) {
    for (int j = 0; j < 16; j += 2)  // 256-bit halves: v[j] in the low half, v[j + 1] in the high
        v[j / 2] = _mm512_add_ps(_mm512_shuffle_f32x4(v[j], v[j + 1], 0x44), _mm512_shuffle_f32x4(v[j], v[j + 1], 0xee));
    for (int j = 0; j < 8; j += 2)  // 128-bit lanes: one per key
        v[j / 2] = _mm512_add_ps(_mm512_shuffle_f32x4(v[j], v[j + 1], 0x88), _mm512_shuffle_f32x4(v[j], v[j + 1], 0xdd));
    for (int j = 0; j < 4; j += 2)  // pairs within each lane
        v[j / 2] = _mm512_add_ps(_mm512_shuffle_ps(v[j], v[j + 1], 0x44), _mm512_shuffle_ps(v[j], v[j + 1], 0xee));
    const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xdd));
    // Lane L, element m now holds key 4 m + L.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, t);
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

// The scan of a scored block: a + slack n >= floor, or a NaN (the comparison is unordered) or
// -inf; an infinite norm reaches +inf, or NaN where the slack is 0. The masks first, the
// hits from them after, so the vector loop keeps its registers.
void scan_block(const Block& b, const ScreenQueries& q, const float* floors, const float* slacks, std::vector<uint16_t>& masks,
                std::vector<ScreenHit>& hits) {
    const int64_t lanes = q.groups * 16;
    const __m512 minus_inf = _mm512_set1_ps(-INFINITY);
    masks.resize(static_cast<size_t>(b.count * q.groups));
    bool any = false;
    for (int64_t g = 0; g < q.groups; ++g) {
        const __m512 fl = _mm512_loadu_ps(floors + 16 * g), sl = _mm512_loadu_ps(slacks + 16 * g);
        const int64_t valid = std::min<int64_t>(16, q.n_queries - 16 * g);
        const __mmask16 valid_mask = static_cast<__mmask16>(valid == 16 ? 0xffffu : (1u << valid) - 1);
        for (int64_t j = 0; j < b.count; ++j) {
            const __m512 v = _mm512_loadu_ps(b.scores.data() + j * lanes + 16 * g);
            const __mmask16 reach = _mm512_mask_cmp_ps_mask(valid_mask, _mm512_fmadd_ps(sl, _mm512_set1_ps(b.norms[j]), v), fl, _CMP_NLT_UQ);
            const __mmask16 mask = reach | _mm512_mask_cmp_ps_mask(valid_mask, v, minus_inf, _CMP_EQ_OQ);
            masks[static_cast<size_t>(j * q.groups + g)] = mask;
            any |= mask != 0;
        }
    }
    if (!any) return;
    for (int64_t j = 0; j < b.count; ++j)
        for (int64_t g = 0; g < q.groups; ++g)
            for (uint32_t mask = masks[static_cast<size_t>(j * q.groups + g)]; mask; mask &= mask - 1) {
                const int lane = __builtin_ctz(mask);
                hits.push_back({static_cast<int32_t>(b.first + j), static_cast<int32_t>(16 * g + lane),
                                b.scores[static_cast<size_t>(j * lanes + 16 * g + lane)], b.norms[j]});
            }
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
    // Padding lanes never pass: floor +inf, and the valid-lane mask of the scan.
    floors.assign(static_cast<size_t>(lanes), INFINITY);
    slacks.assign(static_cast<size_t>(lanes), 0.0f);
    std::copy_n(floor, q.n_queries, floors.begin());
    std::copy_n(slack, q.n_queries, slacks.begin());
    const int64_t n_blocks = (keys.rows + 16 * kGroups - 1) / (16 * kGroups);
    for (int64_t t = 0; t < n_blocks + 2; ++t) {
        if (t < n_blocks) prepare_block(keys, q, t * 16 * kGroups, blocks[t % 3]);
        if (t >= 1 && t - 1 < n_blocks) score_block(q, blocks[(t - 1) % 3]);
        if (t >= 2) scan_block(blocks[(t - 2) % 3], q, floors.data(), slacks.data(), masks, hits);
    }
    _tile_release();
}

}  // namespace mome
