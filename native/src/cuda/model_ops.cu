// Kernels of the frozen Llama layer on CUDA; see model_ops.h.
#include <climits>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "cuda/cublas.h"
#include "cuda/cuda_check.h"
#include "cuda/device_types.cuh"
#include "cuda/kernel_common.cuh"
#include "cuda/model_ops.h"

namespace mome {

namespace {

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ weight, int64_t d, float eps, float* __restrict__ out) {
    __shared__ float scratch[32];
    const float* row = x + blockIdx.x * d;
    float sum = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum = fmaf(row[i], row[i], sum);
    const float scale = rsqrtf(block_sum(sum, scratch) / static_cast<float>(d) + eps);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) out[blockIdx.x * d + i] = row[i] * scale * weight[i];
}

__global__ void rope_norm_kernel(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* __restrict__ pos, int64_t n_rot,
                                 float theta_scale, float freq_scale, const float* __restrict__ factors) {
    const int64_t pairs = n_rot / 2;
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= rows * n_heads * pairs) return;
    const int64_t pair = i % pairs, head = (i / pairs) % n_heads, row = i / (pairs * n_heads);
    float theta = static_cast<float>(pos[row]);
    for (int64_t p = 0; p < pair; ++p) theta *= theta_scale;  // ggml's recurrence, step by step
    const float angle = freq_scale * (theta / (factors ? factors[pair] : 1.0f));
    float s, c;
    sincosf(angle, &s, &c);
    float* v = x + (row * n_heads + head) * head_dim + 2 * pair;
    const float a = v[0], b = v[1];
    v[0] = a * c - b * s;
    v[1] = a * s + b * c;
}

__global__ void swiglu_kernel(const float* __restrict__ gate, const float* __restrict__ up, int64_t n, float* __restrict__ out) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// One block per (query, head): scores over the visible positions in shared memory, softmax,
// then each thread accumulates some of the head's output dimensions.
__global__ void attention_kernel(const float* __restrict__ q, const float* __restrict__ k_all, const float* __restrict__ v_all,
                                 const int32_t* __restrict__ seq_ids, int64_t seq_positions, const int32_t* __restrict__ visible,
                                 int64_t n_head, int64_t n_head_kv, int64_t head_dim, float* __restrict__ out) {
    extern __shared__ float w[];  // [max_positions]
    __shared__ float scratch[32];
    const int64_t t = blockIdx.x, h = blockIdx.y, kvh = h / (n_head / n_head_kv), stride = n_head_kv * head_dim;
    const int64_t base = (seq_ids ? seq_ids[t] : 0) * seq_positions * stride;
    const float* k_cache = k_all + base;
    const float* v_cache = v_all + base;
    const int n = visible[t];
    const float* qh = q + (t * n_head + h) * head_dim;
    const float scale = rsqrtf(static_cast<float>(head_dim));
    float local_max = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float* k = k_cache + j * stride + kvh * head_dim;
        float dot = 0;
        for (int64_t e = 0; e < head_dim; ++e) dot = fmaf(qh[e], k[e], dot);
        w[j] = dot * scale;
        local_max = fmaxf(local_max, w[j]);
    }
    const float m = block_max(local_max, scratch);
    float local_sum = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) local_sum += (w[j] = expf(w[j] - m));
    const float sum = block_sum(local_sum, scratch);  // its barriers also publish w
    for (int64_t e = threadIdx.x; e < head_dim; e += blockDim.x) {
        float acc = 0;
        for (int j = 0; j < n; ++j) acc = fmaf(w[j], v_cache[j * stride + kvh * head_dim + e], acc);
        out[(t * n_head + h) * head_dim + e] = acc / sum;
    }
}

template <typename T>
__global__ void embed_rows(const T* __restrict__ table, const int32_t* __restrict__ tokens, int64_t n, int64_t d, float* __restrict__ x) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n * d; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        x[i] = to_float(table[static_cast<int64_t>(tokens[i / d]) * d + i % d]);
}

__global__ void add_kernel(float* __restrict__ x, const float* __restrict__ y, int64_t n) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        x[i] += y[i];
}

__global__ void scale_kernel(float* __restrict__ x, float s, int64_t n) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        x[i] *= s;
}

template <bool kScatter>
__global__ void move_rows(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t n_rows, int64_t d, float* __restrict__ out) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n_rows * d; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t row = rows[i / d];
        if (kScatter) out[row * d + i % d] = x[i];
        else out[i] = x[row * d + i % d];
    }
}

__global__ void argmax_kernel(const float* __restrict__ x, int64_t d, int32_t* __restrict__ out) {
    __shared__ float best_v[32];
    __shared__ int32_t best_i[32];
    const float* row = x + blockIdx.x * d;
    float v = -INFINITY;
    int32_t at = INT32_MAX;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        if (row[i] > v) v = row[i], at = static_cast<int32_t>(i);  // strided: the first maximum of this thread
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, offset);
        const int32_t oi = __shfl_xor_sync(0xffffffffu, at, offset);
        if (ov > v || (ov == v && oi < at)) v = ov, at = oi;
    }
    if (threadIdx.x % 32 == 0) best_v[threadIdx.x / 32] = v, best_i[threadIdx.x / 32] = at;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w)
            if (best_v[w] > v || (best_v[w] == v && best_i[w] < at)) v = best_v[w], at = best_i[w];
        out[blockIdx.x] = at;
    }
}

template <typename T>
__global__ void round_to(const float* __restrict__ x, int64_t n, T* __restrict__ y) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        y[i] = from_float<T>(x[i]);
}

}  // namespace

void check_cublas(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) fail(MOME_STATUS_BACKEND_ERROR, format("cuBLAS: %s failed (status %d)", what, static_cast<int>(s)));
}

cublasHandle_t cublas_handle() {
    static std::mutex mutex;
    static std::unordered_map<int, cublasHandle_t> handles;
    int device = 0;
    MOME_CUDA(cudaGetDevice(&device));
    std::lock_guard<std::mutex> lock(mutex);
    auto it = handles.find(device);
    if (it != handles.end()) return it->second;
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "cublasCreate");
    handles[device] = h;
    return h;
}

void cuda_embed(const Tensor& table, const int32_t* tokens, int64_t n, float* x, cudaStream_t stream) {
    const int64_t d = table.cols;
    if (table.type == MOME_TENSOR_TYPE_BF16)
        embed_rows<<<blocks_for(n * d), kThreads, 0, stream>>>(reinterpret_cast<const __nv_bfloat16*>(table.data), tokens, n, d, x);
    else if (table.type == MOME_TENSOR_TYPE_F16)
        embed_rows<<<blocks_for(n * d), kThreads, 0, stream>>>(reinterpret_cast<const __half*>(table.data), tokens, n, d, x);
    else
        embed_rows<<<blocks_for(n * d), kThreads, 0, stream>>>(reinterpret_cast<const float*>(table.data), tokens, n, d, x);
    MOME_CUDA_LAUNCHED("embed_rows");
}

void cuda_add(float* x, const float* y, int64_t n, cudaStream_t stream) {
    add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
    MOME_CUDA_LAUNCHED("add_kernel");
}

void cuda_scale(float* x, float s, int64_t n, cudaStream_t stream) {
    scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, s, n);
    MOME_CUDA_LAUNCHED("scale_kernel");
}

void cuda_gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out, cudaStream_t stream) {
    move_rows<false><<<blocks_for(n_rows * d), kThreads, 0, stream>>>(x, rows, n_rows, d, out);
    MOME_CUDA_LAUNCHED("gather rows");
}

void cuda_scatter_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out, cudaStream_t stream) {
    move_rows<true><<<blocks_for(n_rows * d), kThreads, 0, stream>>>(x, rows, n_rows, d, out);
    MOME_CUDA_LAUNCHED("scatter rows");
}

void cuda_argmax_rows(const float* x, int64_t n, int64_t d, int32_t* out, cudaStream_t stream) {
    argmax_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, d, out);
    MOME_CUDA_LAUNCHED("argmax_kernel");
}

void cuda_rms_norm(const float* x, const float* weight, int64_t rows, int64_t d, float eps, float* out, cudaStream_t stream) {
    rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, d, eps, out);
    MOME_CUDA_LAUNCHED("rms_norm_kernel");
}

void cuda_rope_norm(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const CudaRope& rope, cudaStream_t stream) {
    const float theta_scale = std::pow(rope.freq_base, -2.0f / static_cast<float>(rope.n_rot));
    const int64_t n = rows * n_heads * (rope.n_rot / 2);
    rope_norm_kernel<<<static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        x, rows, n_heads, head_dim, pos, rope.n_rot, theta_scale, rope.freq_scale, rope.freq_factors);
    MOME_CUDA_LAUNCHED("rope_norm_kernel");
}

void cuda_swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
    swiglu_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, n, out);
    MOME_CUDA_LAUNCHED("swiglu_kernel");
}

int64_t cuda_attention_max_positions() {
    int device = 0, limit = 0;
    MOME_CUDA(cudaGetDevice(&device));
    MOME_CUDA(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return (limit - 1024) / static_cast<int64_t>(sizeof(float));  // room for the kernel's static scratch
}

void cuda_attention(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, int64_t seq_positions,
                    const int32_t* visible, int64_t n_queries, int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t max_positions,
                    float* out, cudaStream_t stream) {
    if (max_positions > cuda_attention_max_positions())
        fail(MOME_STATUS_UNSUPPORTED, format("CUDA attention: %lld positions need more shared memory than the device has (at most %lld)",
                                             static_cast<long long>(max_positions), static_cast<long long>(cuda_attention_max_positions())));
    const size_t smem = sizeof(float) * static_cast<size_t>(max_positions);
    MOME_CUDA(cudaFuncSetAttribute(attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    attention_kernel<<<dim3(static_cast<unsigned>(n_queries), static_cast<unsigned>(n_head)), kThreads, smem, stream>>>(
        q, k_cache, v_cache, seq_ids, seq_positions, visible, n_head, n_head_kv, head_dim, out);
    MOME_CUDA_LAUNCHED("attention_kernel");
}

void cuda_round(const float* x, int64_t n, mome_tensor_type type, void* out, cudaStream_t stream) {
    if (type == MOME_TENSOR_TYPE_BF16) round_to<<<blocks_for(n), kThreads, 0, stream>>>(x, n, static_cast<__nv_bfloat16*>(out));
    else round_to<<<blocks_for(n), kThreads, 0, stream>>>(x, n, static_cast<__half*>(out));
    MOME_CUDA_LAUNCHED("round_to");
}

void cuda_gemm(const void* w, mome_tensor_type type, bool transpose_w, int64_t m, int64_t n, int64_t k, int64_t ldw, const float* b,
               bool accumulate, float* c, cudaStream_t stream) {
    cublasHandle_t h = cublas_handle();
    check_cublas(cublasSetStream(h, stream), "cublasSetStream");
    const float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    const cublasOperation_t op = transpose_w ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k), lw = static_cast<int>(ldw);
    if (type == MOME_TENSOR_TYPE_F32) {
        check_cublas(cublasSgemm(h, op, CUBLAS_OP_N, im, in, ik, &one, static_cast<const float*>(w), lw, b, ik, &beta, c, im), "cublasSgemm");
        return;
    }
    const StreamScratch rounded(2 * static_cast<uint64_t>(n) * k, stream);
    const cudaDataType dt = type == MOME_TENSOR_TYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    cuda_round(b, n * k, type, rounded.as<void>(), stream);
    check_cublas(cublasGemmEx(h, op, CUBLAS_OP_N, im, in, ik, &one, w, dt, lw, rounded.as<void>(), dt, ik, &beta, c, CUDA_R_32F, im,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
}

void cuda_matmul(const void* w, mome_tensor_type type, int64_t rows, int64_t cols, const float* x, int64_t n, float* y, cudaStream_t stream) {
    // Row-major Y [n x rows] = X [n x cols] W^T is column-major Y^T [rows x n] = W [rows x cols] . X^T,
    // with W seen column-major as [cols x rows] (so transposed) and X^T as [cols x n].
    cuda_gemm(w, type, true, rows, n, cols, cols, x, false, y, stream);
}

}  // namespace mome
