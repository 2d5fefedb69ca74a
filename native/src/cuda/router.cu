// The router on CUDA. Flat keys: each block scores a block of 64 queries against a chunk of
// keys, tile by tile (tensor cores for F16/BF16 keys, CUDA cores for F32), and keeps each
// query's top-k in a warp's registers as the tiles stream by; a second kernel merges the
// chunks' lists. The queries x experts score matrix is never written. Product keys: one
// block per query scores both sub-key tables, takes the top-k of each half, then the top-k
// of the k x k sums.
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <climits>

#include "core/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device_types.cuh"
#include "cuda/warp_topk.cuh"

namespace mome {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int kQueriesPerBlock = 64, kKeysPerTile = 64, kQueriesPerWarp = kQueriesPerBlock / kWarps;
constexpr int kRowPad = 8;  // elements added to each shared row: keeps WMMA origins aligned, spreads banks
constexpr int kScoreStride = kKeysPerTile + 4;

// Shared-memory layout of the flat kernel.
template <typename Q, typename T>
struct FlatLayout {
    int ld;  // elements per shared row of queries and keys
    __host__ __device__ explicit FlatLayout(int d_pad) : ld(d_pad + kRowPad) {}
    __host__ __device__ size_t query_bytes() const { return sizeof(Q) * kQueriesPerBlock * ld; }
    __host__ __device__ size_t key_bytes() const { return sizeof(T) * kKeysPerTile * ld; }
    __host__ __device__ size_t score_bytes() const { return sizeof(float) * kQueriesPerBlock * kScoreStride; }
    __host__ __device__ size_t total() const { return query_bytes() + key_bytes() + score_bytes(); }
};

// Scores of the block's queries against the tile's keys into `scores` [64 x kScoreStride].
template <typename T>
__device__ void tile_scores_tensor(const T* qs, const T* ks, int ld, int d_pad, float* scores) {
    using namespace nvcuda;
    const int warp = threadIdx.x / 32;
    const int fr = warp / 2, fc = (warp % 2) * 2;  // 4 x 4 fragments of 16 x 16; two per warp
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c0, c1;
    wmma::fill_fragment(c0, 0.0f);
    wmma::fill_fragment(c1, 0.0f);
    for (int kk = 0; kk < d_pad; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b0, b1;
        wmma::load_matrix_sync(a, qs + fr * 16 * ld + kk, ld);
        wmma::load_matrix_sync(b0, ks + fc * 16 * ld + kk, ld);
        wmma::load_matrix_sync(b1, ks + (fc + 1) * 16 * ld + kk, ld);
        wmma::mma_sync(c0, a, b0, c0);
        wmma::mma_sync(c1, a, b1, c1);
    }
    wmma::store_matrix_sync(scores + fr * 16 * kScoreStride + fc * 16, c0, kScoreStride, wmma::mem_row_major);
    wmma::store_matrix_sync(scores + fr * 16 * kScoreStride + (fc + 1) * 16, c1, kScoreStride, wmma::mem_row_major);
}

__device__ void tile_scores_fma(const float* qs, const float* ks, int ld, int d, float* scores) {
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;  // a 4 x 4 micro-tile per thread
    float acc[4][4] = {};
    for (int e = 0; e < d; ++e) {
        float q[4], k[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) q[i] = qs[(ty * 4 + i) * ld + e], k[i] = ks[(tx + 16 * i) * ld + e];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(q[i], k[j], acc[i][j]);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) scores[(ty * 4 + i) * kScoreStride + tx + 16 * j] = acc[i][j];
}

// Q: the queries' type in shared memory (T for tensor cores, float otherwise).
template <typename T, typename Q, bool kTensor>
__global__ void __launch_bounds__(kThreads) flat_chunk_topk(const T* __restrict__ keys, int n_experts, int d, int d_pad,
                                                            const float* __restrict__ queries, int n_queries, int k, int keys_per_chunk,
                                                            bool vector, float* __restrict__ part_scores, int* __restrict__ part_indices,
                                                            int* __restrict__ bad) {
    extern __shared__ __align__(128) unsigned char smem[];
    const FlatLayout<Q, T> layout(d_pad);
    Q* qs = reinterpret_cast<Q*>(smem);
    T* ks = reinterpret_cast<T*>(smem + layout.query_bytes());
    float* scores = reinterpret_cast<float*>(smem + layout.query_bytes() + layout.key_bytes());
    const int ld = layout.ld, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int q0 = blockIdx.x * kQueriesPerBlock;
    const int chunk = blockIdx.y;
    const int64_t begin = static_cast<int64_t>(chunk) * keys_per_chunk;
    const int64_t end = min(static_cast<int64_t>(n_experts), begin + keys_per_chunk);

    for (int v = threadIdx.x; v < kQueriesPerBlock * d_pad; v += kThreads) {
        const int row = v / d_pad, col = v % d_pad;
        const float x = (q0 + row < n_queries && col < d) ? queries[static_cast<int64_t>(q0 + row) * d + col] : 0.0f;
        qs[row * ld + col] = from_float<Q>(x);
    }
    // The padding columns stay zero; rows past the chunk's end keep stale keys whose scores
    // are never offered.
    for (int v = threadIdx.x; v < kKeysPerTile * ld; v += kThreads) ks[v] = from_float<T>(0.0f);
    constexpr int kVec = 16 / sizeof(T);  // elements per 16-byte load
    WarpTopK lists[kQueriesPerWarp];
    for (int64_t tile = begin; tile < end; tile += kKeysPerTile) {
        __syncthreads();  // the previous tile's keys and scores are no longer read
        const int rows = static_cast<int>(min(static_cast<int64_t>(kKeysPerTile), end - tile));
        if (vector) {
            const int per_row = d / kVec;
            for (int v = threadIdx.x; v < rows * per_row; v += kThreads) {
                const int row = v / per_row, col = (v % per_row) * kVec;
                *reinterpret_cast<uint4*>(ks + row * ld + col) = *reinterpret_cast<const uint4*>(keys + (tile + row) * d + col);
            }
        } else {
            for (int v = threadIdx.x; v < rows * d; v += kThreads) ks[(v / d) * ld + v % d] = keys[tile * d + v];
        }
        __syncthreads();
        if constexpr (kTensor) tile_scores_tensor<T>(reinterpret_cast<const T*>(qs), ks, ld, d_pad, scores);
        else tile_scores_fma(reinterpret_cast<const float*>(qs), reinterpret_cast<const float*>(ks), ld, d, scores);
        __syncthreads();
#pragma unroll
        for (int qq = 0; qq < kQueriesPerWarp; ++qq) {
            const int row = warp * kQueriesPerWarp + qq;
#pragma unroll
            for (int h = 0; h < kKeysPerTile / 32; ++h) {
                const int col = lane + 32 * h;
                const int64_t key = tile + col;
                float s = scores[row * kScoreStride + col];
                const bool valid = key < end;
                if (valid && !isfinite(s)) {
                    if (q0 + row < n_queries) atomicOr(bad, 1);
                    s = -INFINITY;
                }
                lists[qq].offer(valid ? s : -INFINITY, valid ? static_cast<int>(key) : INT_MAX, k);
            }
        }
    }
#pragma unroll
    for (int qq = 0; qq < kQueriesPerWarp; ++qq) {
        const int q = q0 + warp * kQueriesPerWarp + qq;
        if (q < n_queries && lane < k) {
            const int64_t at = (static_cast<int64_t>(chunk) * n_queries + q) * k + lane;
            part_scores[at] = lists[qq].score;
            part_indices[at] = lists[qq].index;
        }
    }
}

// One warp per query: the best k of its chunks' lists, then the route.
__global__ void merge_chunks(const float* __restrict__ part_scores, const int* __restrict__ part_indices, int n_chunks, int n_queries,
                             int k, float scale, float temperature, int* indices, float* weights, float* scores) {
    const int q = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (q >= n_queries) return;  // whole warps leave together
    WarpTopK list;
    const int total = n_chunks * k;
    for (int base = 0; base < total; base += 32) {
        const int c = base + lane;
        float s = -INFINITY;
        int i = INT_MAX;
        if (c < total) {
            const int64_t at = (static_cast<int64_t>(c / k) * n_queries + q) * k + c % k;
            s = part_scores[at], i = part_indices[at];
        }
        list.offer(s, i, k);
    }
    const int64_t out = static_cast<int64_t>(q) * k;
    write_route(list, k, scale, temperature, indices + out, weights + out, scores ? scores + out : nullptr);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) product_topk(const T* __restrict__ keys, int n_sub, int half, const float* __restrict__ queries,
                                                         int k, float scale, float temperature, int* indices, float* weights,
                                                         float* scores, int* __restrict__ bad) {
    extern __shared__ __align__(128) unsigned char smem[];
    float* q = reinterpret_cast<float*>(smem);  // [2 * half]
    float* s = q + 2 * half;                    // [2 * n_sub]: both halves' scores
    __shared__ float best_s[2][32];
    __shared__ int best_i[2][32];
    const int query = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int e = threadIdx.x; e < 2 * half; e += kThreads) q[e] = queries[static_cast<int64_t>(query) * 2 * half + e];
    __syncthreads();
    for (int row = warp; row < 2 * n_sub; row += kWarps) {  // table 1's rows, then table 2's
        const T* key = keys + static_cast<int64_t>(row) * half;
        const float* qh = q + (row / n_sub) * half;
        float dot = 0;
        for (int e = lane; e < half; e += 32) dot = fmaf(qh[e], to_float(key[e]), dot);
#pragma unroll
        for (int offset = 16; offset > 0; offset >>= 1) dot += __shfl_xor_sync(kFullMask, dot, offset);
        if (lane == 0) {
            if (!isfinite(dot)) atomicOr(bad, 1), dot = -INFINITY;
            s[row] = dot;
        }
    }
    __syncthreads();
    if (warp < 2) {
        WarpTopK list;
        for (int base = 0; base < n_sub; base += 32) {
            const int i = base + lane;
            list.offer(i < n_sub ? s[warp * n_sub + i] : -INFINITY, i < n_sub ? i : INT_MAX, k);
        }
        best_s[warp][lane] = list.score;
        best_i[warp][lane] = list.index;
    }
    __syncthreads();
    if (warp != 0) return;
    WarpTopK list;
    for (int a = 0; a < k; ++a) {
        const bool ok = lane < k;
        list.offer(ok ? best_s[0][a] + best_s[1][lane] : -INFINITY, ok ? best_i[0][a] * n_sub + best_i[1][lane] : INT_MAX, k);
    }
    const int64_t out = static_cast<int64_t>(query) * k;
    write_route(list, k, scale, temperature, indices + out, weights + out, scores ? scores + out : nullptr);
}

int device_attribute(cudaDeviceAttr attr, int device) {
    int value = 0;
    MOME_CUDA(cudaDeviceGetAttribute(&value, attr, device));
    return value;
}

void require_shared(size_t bytes, int device, const char* what) {
    const size_t limit = static_cast<size_t>(device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (bytes > limit)
        fail(MOME_STATUS_UNSUPPORTED, format("CUDA router: %s needs %zu bytes of shared memory per block; the device allows %zu", what,
                                             bytes, limit));
}

template <typename T, typename Q, bool kTensor>
void launch_flat(int device, const mome_router_desc& r, const float* queries, int n, int32_t* indices, float* weights, float* scores,
                 int* bad, cudaStream_t stream) {
    const int d = static_cast<int>(r.key_dim), d_pad = (d + 15) / 16 * 16, k = r.top_k;
    const int n_experts = static_cast<int>(r.n_experts);
    const size_t smem = FlatLayout<Q, T>(d_pad).total();
    require_shared(smem, device, "this key_dim");
    auto kernel = flat_chunk_topk<T, Q, kTensor>;
    MOME_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    // Enough blocks to fill the device several times over; blocks of one chunk are adjacent in
    // launch order, so they read its keys from L2 rather than each from memory.
    const int query_blocks = (n + kQueriesPerBlock - 1) / kQueriesPerBlock;
    const int64_t tiles = (r.n_experts + kKeysPerTile - 1) / kKeysPerTile;
    const int64_t wanted = (4LL * device_attribute(cudaDevAttrMultiProcessorCount, device) + query_blocks - 1) / query_blocks;
    const int64_t chunks_wanted = std::clamp<int64_t>(wanted, 1, std::min<int64_t>(tiles, 65535));
    const int keys_per_chunk = static_cast<int>((tiles + chunks_wanted - 1) / chunks_wanted * kKeysPerTile);
    const int chunks = static_cast<int>((r.n_experts + keys_per_chunk - 1) / keys_per_chunk);
    const StreamScratch part_scores(sizeof(float) * static_cast<uint64_t>(chunks) * n * k, stream);
    const StreamScratch part_indices(sizeof(int) * static_cast<uint64_t>(chunks) * n * k, stream);
    // 16-byte key loads when rows start on 16-byte boundaries.
    const bool vector = d % (16 / sizeof(T)) == 0 && reinterpret_cast<uintptr_t>(r.keys) % 16 == 0;
    kernel<<<dim3(query_blocks, chunks), kThreads, smem, stream>>>(static_cast<const T*>(r.keys), n_experts, d, d_pad, queries, n, k,
                                                                   keys_per_chunk, vector, part_scores.as<float>(), part_indices.as<int>(),
                                                                   bad);
    MOME_CUDA_LAUNCHED("flat_chunk_topk");
    constexpr int kMergeWarps = 4;
    merge_chunks<<<(n + kMergeWarps - 1) / kMergeWarps, 32 * kMergeWarps, 0, stream>>>(
        part_scores.as<float>(), part_indices.as<int>(), chunks, n, k, 1.0f / std::sqrt(static_cast<float>(d)), r.temperature, indices,
        weights, scores);
    MOME_CUDA_LAUNCHED("merge_chunks");
}

template <typename T>
void launch_product(int device, const mome_router_desc& r, const float* queries, int n, int32_t* indices, float* weights, float* scores,
                    int* bad, cudaStream_t stream) {
    const int n_sub = static_cast<int>(std::llround(std::sqrt(static_cast<double>(r.n_experts))));
    const int half = static_cast<int>(r.key_dim / 2);
    const size_t smem = sizeof(float) * (2 * static_cast<size_t>(half) + 2 * static_cast<size_t>(n_sub));
    require_shared(smem, device, "this many sub-keys");
    MOME_CUDA(cudaFuncSetAttribute(product_topk<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    product_topk<T><<<n, kThreads, smem, stream>>>(static_cast<const T*>(r.keys), n_sub, half, queries, r.top_k,
                                                    1.0f / std::sqrt(static_cast<float>(r.key_dim)), r.temperature, indices, weights,
                                                    scores, bad);
    MOME_CUDA_LAUNCHED("product_topk");
}

}  // namespace

void cuda_route(int device, const mome_router_desc& r, const float* queries, int64_t n_queries, int32_t* indices, float* weights,
                float* scores, void* stream_handle) {
    if (r.n_experts > INT_MAX || n_queries > INT_MAX / 2)
        fail(MOME_STATUS_UNSUPPORTED, "CUDA router: at most 2^31 - 1 experts and 2^30 queries per call");
    DeviceScope scope(device);
    const auto stream = static_cast<cudaStream_t>(stream_handle);
    const int n = static_cast<int>(n_queries);
    const StreamScratch bad(sizeof(int), stream);
    MOME_CUDA(cudaMemsetAsync(bad.as<int>(), 0, sizeof(int), stream));
    if (r.kind == MOME_ROUTER_KIND_FLAT) {
        if (r.key_type == MOME_TENSOR_TYPE_BF16)
            launch_flat<__nv_bfloat16, __nv_bfloat16, true>(device, r, queries, n, indices, weights, scores, bad.as<int>(), stream);
        else if (r.key_type == MOME_TENSOR_TYPE_F16)
            launch_flat<__half, __half, true>(device, r, queries, n, indices, weights, scores, bad.as<int>(), stream);
        else
            launch_flat<float, float, false>(device, r, queries, n, indices, weights, scores, bad.as<int>(), stream);
    } else {
        if (r.key_type == MOME_TENSOR_TYPE_BF16)
            launch_product<__nv_bfloat16>(device, r, queries, n, indices, weights, scores, bad.as<int>(), stream);
        else if (r.key_type == MOME_TENSOR_TYPE_F16)
            launch_product<__half>(device, r, queries, n, indices, weights, scores, bad.as<int>(), stream);
        else
            launch_product<float>(device, r, queries, n, indices, weights, scores, bad.as<int>(), stream);
    }
    int flagged = 0;
    MOME_CUDA(cudaMemcpyAsync(&flagged, bad.as<int>(), sizeof(int), cudaMemcpyDeviceToHost, stream));
    MOME_CUDA(cudaStreamSynchronize(stream));
    if (flagged)
        fail(MOME_STATUS_INVALID_ARGUMENT, "CUDA router: a score is not finite (a query or key holds NaN or Inf); the outputs are unspecified");
}

}  // namespace mome
