// Grouped LoRA on CUDA: out[t] += scale * sum_j w_j B_e (A_e u_t) for the experts of t's
// segment. Segments (sequences) share experts, so each expert's rows are read once per
// segment, as in Punica's SGMV; one token per segment is the per-token form (BGMV).
// Three launches: a check of offsets, indices and weights on the device (nothing is written
// when it fails); shrink, z[t, j] = A_e u_t (one block per segment and expert); expand,
// out[t] += scale * sum_j w_j * sum_i z[t, j, i] B_e[i] (one block per segment and 2048
// columns, up to 4 tokens of the segment per pass over the experts' rows).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "core/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device_types.cuh"

namespace mome {

namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32;
constexpr int kColumnsPerThread = 8, kColumnsPerBlock = kThreads * kColumnsPerThread;
constexpr int kTokensPerPass = 4;

// First bad position of each kind, or ULLONG_MAX: [0] segment offsets, [1] indices, [2] weights.
__global__ void check_routes(const int64_t* __restrict__ offsets, int64_t n_segments, int64_t n_tokens, const int* __restrict__ indices,
                             const float* __restrict__ weights, int k, int64_t n_experts, unsigned long long* bad) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i <= n_segments) {
        const bool ok = i == 0 ? offsets[0] == 0 : (offsets[i] >= offsets[i - 1] && (i < n_segments || offsets[i] == n_tokens));
        if (!ok) atomicMin(&bad[0], static_cast<unsigned long long>(i));
    }
    if (i < n_segments * k) {
        if (indices[i] < 0 || indices[i] >= n_experts) atomicMin(&bad[1], static_cast<unsigned long long>(i));
        if (!isfinite(weights[i])) atomicMin(&bad[2], static_cast<unsigned long long>(i));
    }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) shrink(const T* __restrict__ a, int64_t d, int r, const float* __restrict__ u,
                                                   const int64_t* __restrict__ offsets, const int* __restrict__ indices, int k,
                                                   float* __restrict__ z, bool vector) {
    const int64_t s = blockIdx.x;
    const int j = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const T* a_e = a + static_cast<int64_t>(indices[s * k + j]) * r * d;
    for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t) {
        const float* ut = u + t * d;
        for (int i = warp; i < r; i += kWarps) {
            const T* row = a_e + static_cast<int64_t>(i) * d;
            float acc = 0;
            if (vector) {
                for (int64_t c = lane * kColumnsPerThread; c < d; c += 32 * kColumnsPerThread) {
                    float av[8], uv[8];
                    load8(row + c, true, av);
                    load8(ut + c, true, uv);
#pragma unroll
                    for (int e = 0; e < 8; ++e) acc = fmaf(av[e], uv[e], acc);
                }
            } else {
                for (int64_t c = lane; c < d; c += 32) acc = fmaf(to_float(row[c]), ut[c], acc);
            }
#pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
            if (lane == 0) z[(t * k + j) * r + i] = acc;
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) expand(const T* __restrict__ b, int64_t d, int r, const float* __restrict__ z,
                                                   const int64_t* __restrict__ offsets, const int* __restrict__ indices,
                                                   const float* __restrict__ weights, int k, float scale, float* __restrict__ out,
                                                   bool vector) {
    const int64_t s = blockIdx.x;
    const int64_t c0 = (static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x) * kColumnsPerThread;
    if (c0 >= d) return;
    const bool whole = vector && c0 + kColumnsPerThread <= d;
    const int64_t t_end = offsets[s + 1];
    for (int64_t t0 = offsets[s]; t0 < t_end; t0 += kTokensPerPass) {
        const int nt = static_cast<int>(min(static_cast<int64_t>(kTokensPerPass), t_end - t0));
        float acc[kTokensPerPass][kColumnsPerThread] = {};
        for (int j = 0; j < k; ++j) {
            const T* b_e = b + static_cast<int64_t>(indices[s * k + j]) * r * d;
            const float w = weights[s * k + j];
            for (int i = 0; i < r; ++i) {
                float bv[kColumnsPerThread];
                if (whole) load8(b_e + static_cast<int64_t>(i) * d + c0, true, bv);
                else
#pragma unroll
                    for (int c = 0; c < kColumnsPerThread; ++c) bv[c] = c0 + c < d ? to_float(b_e[static_cast<int64_t>(i) * d + c0 + c]) : 0.0f;
#pragma unroll
                for (int tt = 0; tt < kTokensPerPass; ++tt) {
                    if (tt >= nt) break;
                    const float coef = w * z[((t0 + tt) * k + j) * r + i];
#pragma unroll
                    for (int c = 0; c < kColumnsPerThread; ++c) acc[tt][c] = fmaf(coef, bv[c], acc[tt][c]);
                }
            }
        }
#pragma unroll
        for (int tt = 0; tt < kTokensPerPass; ++tt) {
            if (tt >= nt) break;
            float* o = out + (t0 + tt) * d + c0;
#pragma unroll
            for (int c = 0; c < kColumnsPerThread; ++c)
                if (c0 + c < d) o[c] += scale * acc[tt][c];
        }
    }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T>
void launch(const mome_lora_desc& e, const float* u, int64_t n_tokens, const int64_t* offsets, int64_t n_segments, const int* indices,
            const float* weights, int k, float scale, float* out, cudaStream_t stream) {
    const bool vector = e.dim % kColumnsPerThread == 0 && aligned16(e.a) && aligned16(e.b) && aligned16(u) && aligned16(out);
    const StreamScratch z(sizeof(float) * static_cast<uint64_t>(n_tokens) * k * e.rank, stream);
    shrink<T><<<dim3(static_cast<unsigned>(n_segments), k), kThreads, 0, stream>>>(static_cast<const T*>(e.a), e.dim, e.rank, u, offsets,
                                                                                   indices, k, z.as<float>(), vector);
    MOME_CUDA_LAUNCHED("shrink");
    const unsigned column_blocks = static_cast<unsigned>((e.dim + kColumnsPerBlock - 1) / kColumnsPerBlock);
    expand<T><<<dim3(static_cast<unsigned>(n_segments), column_blocks), kThreads, 0, stream>>>(
        static_cast<const T*>(e.b), e.dim, e.rank, z.as<float>(), offsets, indices, weights, k, scale, out, vector);
    MOME_CUDA_LAUNCHED("expand");
}

}  // namespace

void cuda_lora_apply(int device, const mome_lora_desc& e, const float* u, int64_t n_tokens, const int64_t* segment_offsets,
                     int64_t n_segments, const int32_t* indices, const float* weights, int32_t top_k, float scale, float* out,
                     void* stream_handle) {
    if (n_segments > INT_MAX || top_k > 65535)
        fail(MOME_STATUS_UNSUPPORTED, "CUDA grouped LoRA: at most 2^31 - 1 segments and 65535 experts per segment");
    DeviceScope scope(device);
    const auto stream = static_cast<cudaStream_t>(stream_handle);
    const StreamScratch bad(3 * sizeof(unsigned long long), stream);
    MOME_CUDA(cudaMemsetAsync(bad.as<unsigned long long>(), 0xff, 3 * sizeof(unsigned long long), stream));
    const int64_t checks = std::max(n_segments + 1, n_segments * top_k);
    check_routes<<<static_cast<unsigned>((checks + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        segment_offsets, n_segments, n_tokens, indices, weights, top_k, e.n_experts, bad.as<unsigned long long>());
    MOME_CUDA_LAUNCHED("check_routes");
    unsigned long long first[3];
    MOME_CUDA(cudaMemcpyAsync(first, bad.as<unsigned long long>(), sizeof first, cudaMemcpyDeviceToHost, stream));
    MOME_CUDA(cudaStreamSynchronize(stream));
    if (first[0] != ULLONG_MAX)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("CUDA grouped LoRA: segment offset %llu is out of order (offsets must run from 0 "
                                                  "up to n_tokens = %lld)", first[0], static_cast<long long>(n_tokens)));
    if (first[1] != ULLONG_MAX) {
        int32_t index = 0;
        MOME_CUDA(cudaMemcpy(&index, indices + first[1], sizeof index, cudaMemcpyDeviceToHost));
        fail(MOME_STATUS_OUT_OF_RANGE, format("CUDA grouped LoRA: expert index %d (segment %llu) is outside 0..%lld", index,
                                              first[1] / top_k, static_cast<long long>(e.n_experts - 1)));
    }
    if (first[2] != ULLONG_MAX)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("CUDA grouped LoRA: weight %llu of segment %llu is not finite", first[2] % top_k,
                                                  first[2] / top_k));
    if (e.weight_type == MOME_TENSOR_TYPE_BF16)
        launch<__nv_bfloat16>(e, u, n_tokens, segment_offsets, n_segments, indices, weights, top_k, scale, out, stream);
    else if (e.weight_type == MOME_TENSOR_TYPE_F16)
        launch<__half>(e, u, n_tokens, segment_offsets, n_segments, indices, weights, top_k, scale, out, stream);
    else
        launch<float>(e, u, n_tokens, segment_offsets, n_segments, indices, weights, top_k, scale, out, stream);
}

}  // namespace mome
