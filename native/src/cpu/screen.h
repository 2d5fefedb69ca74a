// The flat router's screening pass (memory/router.cpp): approximate scores a = q'.k' of
// queries and keys rounded to BF16, summed in F32 in an unspecified order, together with each
// key's norm, so that an error bound on a can tell which keys need their exact score. A
// kernel reports only the (key, query) pairs whose score could still reach the query's k-th
// best; everything else of a million-key table is dropped inside the kernel.
//
// Layout of the packed queries (the AMX B-tile layout, also read by the portable kernel):
// queries in groups of 16, dimensions in steps of 32; for group g and step s a 16 x 32 block of
// BF16 values whose row r holds, for each query n of the group, the dimensions 2r and 2r + 1 of
// the step: pairs[((g * steps + s) * 16 + r) * 32 + 2 n + p] = q'[16 g + n][32 s + 2 r + p],
// zero past the last query or dimension.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned_vector.h"
#include "core/tensor.h"

namespace mome {

struct ScreenQueries {
    CacheLineVector<uint16_t> pairs;
    int64_t n_queries = 0, groups = 0, dim = 0, steps = 0;
};

// The layout above from queries already rounded to BF16 ([n_queries x dim]).
ScreenQueries pack_screen_queries(const uint16_t* queries_bf16, int64_t n_queries, int64_t dim);

struct ScreenHit {
    int32_t key;    // row of the block
    int32_t query;  // query of the batch
    float score;    // a, the approximate score
    float norm;     // the key's norm as the kernel computed it (F32 sum of squares, square root)
};

// For every key j of `keys` (a block of an F32, F16 or BF16 key table, any number of rows)
// and query q: a[j][q] as above and the key's norm n[j] = sqrt(sum_i key[i]^2); appends
// (j, q, a, n) to hits when a + slack[q] * n >= floor[q] or a or n is not finite. floor and
// slack have one value per query; floor may be -inf.
using ScreenBlockFn = void (*)(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                               std::vector<ScreenHit>& hits);

void screen_block_portable(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                           std::vector<ScreenHit>& hits);
void screen_block_amx(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                      std::vector<ScreenHit>& hits);
void screen_block_avx512bf16(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                             std::vector<ScreenHit>& hits);

struct ScreenKernel {
    const char* name;  // "amx-bf16", "avx512-bf16"
    ScreenBlockFn fn;
};

// The accelerated kernels this CPU and OS can run, best first (MOME_CPU_ISA not consulted).
std::vector<ScreenKernel> screen_kernels();

// The AMX kernel where the CPU has AMX-BF16 (and AVX-512 BF16) and the OS grants the tile
// state, else null (the router then runs its plain F32 scan). MOME_CPU_ISA=avx512bf16 picks the
// AVX-512 BF16 kernel instead (where the CPU has it); any other value but "amx" turns both off.
ScreenBlockFn screen_block_best();

// "amx-bf16", "avx512-bf16", or "none" where screen_block_best() is null.
const char* screen_isa();

}  // namespace mome
