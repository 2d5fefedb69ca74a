// The screening kernel (cpu/screen.h) on AVX-512 BF16 dot products (vdpbf16ps), for CPUs that
// have them but no AMX (AMD Zen 4) or whose OS withholds the tiles; built with AVX-512 F, BW,
// VL and BF16. Each query group's row of the packed queries (16 queries x one dimension pair)
// is already the vector a dot product wants: per pair, the pair of each of 4 keys is broadcast
// and multiplied into 4 x 4 accumulators (4 keys x 4 query groups of 16).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "cpu/screen.h"
#include "cpu/screen_avx512.h"

namespace mome {

namespace {

constexpr int64_t kBlockKeys = 64;  // keys converted, scored, then scanned together
constexpr int64_t kKeys = 4;        // keys per register tile

// scores[kk][16 (g0 + gi) + lane] for keys kk < 4 (rows of `rows`, `padded` apart) and the NG
// query groups from g0.
template <int NG>
void dot_tile(const uint16_t* rows, int64_t padded, const ScreenQueries& q, int64_t g0, float* scores, int64_t lanes) {
    const int64_t pairs = q.steps * 16;
    const uint16_t* b = q.pairs.data() + static_cast<size_t>(g0 * pairs * 32);
    const uint32_t* k[kKeys];
    for (int64_t kk = 0; kk < kKeys; ++kk) k[kk] = reinterpret_cast<const uint32_t*>(rows + kk * padded);
    __m512 acc[kKeys][NG];
    for (auto& row : acc)
        for (__m512& a : row) a = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
        __m512i bq[NG];
        for (int gi = 0; gi < NG; ++gi) bq[gi] = _mm512_load_si512(b + (gi * pairs + p) * 32);
        for (int64_t kk = 0; kk < kKeys; ++kk) {
            const __m512i kv = _mm512_set1_epi32(static_cast<int>(k[kk][p]));
            for (int gi = 0; gi < NG; ++gi)
                acc[kk][gi] = _mm512_dpbf16_ps(acc[kk][gi], reinterpret_cast<const __m512bh&>(kv), reinterpret_cast<const __m512bh&>(bq[gi]));
        }
    }
    for (int64_t kk = 0; kk < kKeys; ++kk)
        for (int gi = 0; gi < NG; ++gi) _mm512_storeu_ps(scores + kk * lanes + (g0 + gi) * 16, acc[kk][gi]);
}

}  // namespace

void screen_block_avx512bf16(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                             std::vector<ScreenHit>& hits) {
    const int64_t dim = q.dim, padded = q.steps * 32, lanes = q.groups * 16;
    thread_local CacheLineVector<uint16_t> rows;
    thread_local CacheLineVector<float> scores;
    thread_local std::vector<uint16_t> masks;
    thread_local std::vector<float> floors, slacks;
    rows.resize(static_cast<size_t>(kBlockKeys * padded));
    scores.resize(static_cast<size_t>(kBlockKeys * lanes));
    pad_lanes(q, floor, slack, floors, slacks);
    float norms[kBlockKeys];
    for (int64_t first = 0; first < keys.rows; first += kBlockKeys) {
        const int64_t count = std::min(kBlockKeys, keys.rows - first);
        if (count < kBlockKeys) std::fill(rows.begin(), rows.end(), uint16_t(0));
        for (int64_t g = 0; g * 16 < count; ++g) {
            __m512 sumsq[16];
            for (int64_t j = 0; j < 16; ++j) {
                const int64_t row = 16 * g + j;
                sumsq[j] = row < count ? convert_key(keys, first + row, dim, rows.data() + row * padded) : _mm512_setzero_ps();
            }
            _mm512_storeu_ps(norms + 16 * g, _mm512_sqrt_ps(totals16(sumsq)));
        }
        for (int64_t j0 = 0; j0 < count; j0 += kKeys)
            for (int64_t g0 = 0; g0 < q.groups; g0 += 4) {
                const uint16_t* r = rows.data() + j0 * padded;
                float* s = scores.data() + j0 * lanes;
                switch (std::min<int64_t>(4, q.groups - g0)) {
                    case 4: dot_tile<4>(r, padded, q, g0, s, lanes); break;
                    case 3: dot_tile<3>(r, padded, q, g0, s, lanes); break;
                    case 2: dot_tile<2>(r, padded, q, g0, s, lanes); break;
                    default: dot_tile<1>(r, padded, q, g0, s, lanes); break;
                }
            }
        scan_scores(scores.data(), count, first, norms, q, floors.data(), slacks.data(), masks, hits);
    }
}

}  // namespace mome
