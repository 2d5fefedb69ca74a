// Backward kernels on CUDA; see backward_ops.h.
#include <algorithm>
#include <cmath>

#include "cuda/backward_ops.h"
#include "cuda/cublas.h"
#include "cuda/cuda_check.h"
#include "cuda/device_types.cuh"
#include "cuda/kernel_common.cuh"

namespace mome {

namespace {

__global__ void rms_norm_backward_kernel(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ dy, int64_t d,
                                         float eps, float* __restrict__ dx) {
    __shared__ float scratch[32];
    const float* xr = x + blockIdx.x * d;
    const float* gr = dy + blockIdx.x * d;
    float sum_sq = 0, dot = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
        sum_sq = fmaf(xr[i], xr[i], sum_sq);
        dot = fmaf(gr[i] * weight[i], xr[i], dot);
    }
    sum_sq = block_sum(sum_sq, scratch);
    dot = block_sum(dot, scratch);
    const float s = rsqrtf(sum_sq / static_cast<float>(d) + eps);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
        dx[blockIdx.x * d + i] = s * weight[i] * gr[i] - xr[i] * s * s * s * dot / static_cast<float>(d);
}

__global__ void swiglu_backward_kernel(const float* __restrict__ gate, const float* __restrict__ up, const float* __restrict__ dout, int64_t n,
                                       float* __restrict__ dgate, float* __restrict__ dup) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float sig = 1.0f / (1.0f + expf(-gate[i]));
        dgate[i] = dout[i] * up[i] * sig * (1.0f + gate[i] * (1.0f - sig));
        dup[i] = dout[i] * gate[i] * sig;
    }
}

__global__ void rope_backward_kernel(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* __restrict__ pos, int64_t n_rot,
                                     float theta_scale, float freq_scale, const float* __restrict__ factors) {
    const int64_t pairs = n_rot / 2;
    const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (i >= rows * n_heads * pairs) return;
    const int64_t pair = i % pairs, head = (i / pairs) % n_heads, row = i / (pairs * n_heads);
    float theta = static_cast<float>(pos[row]);
    for (int64_t p = 0; p < pair; ++p) theta *= theta_scale;
    const float angle = freq_scale * (theta / (factors ? factors[pair] : 1.0f));
    float s, c;
    sincosf(angle, &s, &c);
    float* v = x + (row * n_heads + head) * head_dim + 2 * pair;
    const float a = v[0], b = v[1];
    v[0] = a * c + b * s;  // the transpose of the forward rotation
    v[1] = -a * s + b * c;
}

// One block per (query, head): p = softmax(q.k * scale) over the visible positions, then
// ds = p (dout.v - sum p dout.v) * scale; dq = sum ds k; dk += ds q; dv += p dout.
__global__ void attention_backward_kernel(const float* __restrict__ q, const float* __restrict__ k_cache, const float* __restrict__ v_cache,
                                          const int32_t* __restrict__ visible, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                                          const float* __restrict__ dout, float* __restrict__ dq, float* dk, float* dv) {
    extern __shared__ float shared[];  // p [n], then dp [n]
    __shared__ float scratch[32];
    const int64_t t = blockIdx.x, h = blockIdx.y, kvh = h / (n_head / n_head_kv), stride = n_head_kv * head_dim;
    const int n = visible[t];
    float* p = shared;
    float* dp = shared + n;
    const float* qh = q + (t * n_head + h) * head_dim;
    const float* go = dout + (t * n_head + h) * head_dim;
    const float scale = rsqrtf(static_cast<float>(head_dim));
    float local_max = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float* kj = k_cache + j * stride + kvh * head_dim;
        const float* vj = v_cache + j * stride + kvh * head_dim;
        float dot = 0, dv_dot = 0;
        for (int64_t e = 0; e < head_dim; ++e) dot = fmaf(qh[e], kj[e], dot), dv_dot = fmaf(go[e], vj[e], dv_dot);
        p[j] = dot * scale;
        dp[j] = dv_dot;
        local_max = fmaxf(local_max, p[j]);
    }
    const float m = block_max(local_max, scratch);
    float local_sum = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) local_sum += (p[j] = expf(p[j] - m));
    const float sum = block_sum(local_sum, scratch);
    float local_pdp = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        p[j] /= sum;
        local_pdp = fmaf(p[j], dp[j], local_pdp);
    }
    const float pdp = block_sum(local_pdp, scratch);
    for (int j = threadIdx.x; j < n; j += blockDim.x) dp[j] = p[j] * (dp[j] - pdp) * scale;  // now ds
    __syncthreads();
    for (int64_t e = threadIdx.x; e < head_dim; e += blockDim.x) {
        float acc = 0;
        for (int j = 0; j < n; ++j) {
            const int64_t at = j * stride + kvh * head_dim + e;
            acc = fmaf(dp[j], k_cache[at], acc);
            atomicAdd(dk + at, dp[j] * qh[e]);
            atomicAdd(dv + at, p[j] * go[e]);
        }
        dq[(t * n_head + h) * head_dim + e] = acc;
    }
}

__global__ void cross_entropy_kernel(const float* __restrict__ logits, const int32_t* __restrict__ targets, int64_t n_vocab,
                                     float* __restrict__ dlogits, float* __restrict__ loss) {
    __shared__ float scratch[32];
    const float* row = logits + blockIdx.x * n_vocab;
    float local_max = -INFINITY;
    for (int64_t i = threadIdx.x; i < n_vocab; i += blockDim.x) local_max = fmaxf(local_max, row[i]);
    const float m = block_max(local_max, scratch);
    float local_sum = 0;
    for (int64_t i = threadIdx.x; i < n_vocab; i += blockDim.x) local_sum += expf(row[i] - m);
    const float sum = block_sum(local_sum, scratch);
    const int32_t target = targets[blockIdx.x];
    for (int64_t i = threadIdx.x; i < n_vocab; i += blockDim.x)
        dlogits[blockIdx.x * n_vocab + i] = expf(row[i] - m) / sum - (i == target ? 1.0f : 0.0f);
    if (threadIdx.x == 0) loss[blockIdx.x] = -(row[target] - m - logf(sum));
}

// One block per (expert j, rank row i): z_t = A_j[i] . u_t and g_t = B_j[i] . dout_t for every
// token, then dB_j[i] = scale w_j sum_t z_t dout_t and dA_j[i] = scale w_j sum_t g_t u_t.
__global__ void lora_backward_kernel(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ weights, int64_t rank,
                                     int64_t d, float scale, const float* __restrict__ u, const float* __restrict__ dout, int64_t n,
                                     float* __restrict__ da, float* __restrict__ db) {
    extern __shared__ float zg[];  // [2 x n]
    __shared__ float scratch[32];
    const int64_t j = blockIdx.x / rank, i = blockIdx.x % rank;
    const float* a_row = a + (j * rank + i) * d;
    const float* b_row = b + (j * rank + i) * d;
    for (int64_t t = 0; t < n; ++t) {
        float z = 0, g = 0;
        for (int64_t e = threadIdx.x; e < d; e += blockDim.x) z = fmaf(a_row[e], u[t * d + e], z), g = fmaf(b_row[e], dout[t * d + e], g);
        z = block_sum(z, scratch);
        g = block_sum(g, scratch);
        if (threadIdx.x == 0) zg[t] = z, zg[n + t] = g;
    }
    __syncthreads();
    const float w = scale * weights[j];
    for (int64_t e = threadIdx.x; e < d; e += blockDim.x) {
        float acc_b = 0, acc_a = 0;
        for (int64_t t = 0; t < n; ++t) acc_b = fmaf(zg[t], dout[t * d + e], acc_b), acc_a = fmaf(zg[n + t], u[t * d + e], acc_a);
        db[(j * rank + i) * d + e] = w * acc_b;
        da[(j * rank + i) * d + e] = w * acc_a;
    }
}

void set_shared(const void* kernel, size_t bytes) {
    int device = 0, limit = 0;
    MOME_CUDA(cudaGetDevice(&device));
    MOME_CUDA(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (bytes + 1024 > static_cast<size_t>(limit))
        fail(MOME_STATUS_UNSUPPORTED, format("CUDA backward: %zu bytes of shared memory per block is more than the device has", bytes));
    MOME_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

// One block per row: its 1/rms, then each element's share of the weight's gradient.
__global__ void rms_norm_backward_weight_kernel(const float* __restrict__ x, const float* __restrict__ dy, int64_t d, float eps,
                                                float* __restrict__ dweight) {
    __shared__ float scratch[32];
    const float* xr = x + blockIdx.x * d;
    const float* gr = dy + blockIdx.x * d;
    float sum_sq = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum_sq = fmaf(xr[i], xr[i], sum_sq);
    sum_sq = block_sum(sum_sq, scratch);
    const float s = rsqrtf(sum_sq / static_cast<float>(d) + eps);
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) atomicAdd(dweight + i, gr[i] * xr[i] * s);
}

__global__ void embed_backward_kernel(const float* __restrict__ dx, const int32_t* __restrict__ tokens, int64_t n, int64_t d,
                                      float* __restrict__ dtable) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n * d; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
        atomicAdd(dtable + static_cast<int64_t>(tokens[i / d]) * d + i % d, dx[i]);
}

}  // namespace

void cuda_rms_norm_backward(const float* x, const float* weight, const float* dy, int64_t rows, int64_t d, float eps, float* dx,
                            cudaStream_t stream) {
    rms_norm_backward_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, dy, d, eps, dx);
    MOME_CUDA_LAUNCHED("rms_norm_backward_kernel");
}

void cuda_matmul_backward_input(const void* w, mome_tensor_type type, int64_t rows, int64_t cols, const float* dy, int64_t n, float* dx,
                                cudaStream_t stream) {
    // Row-major dX [n x cols] += dY [n x rows] W is column-major dX^T [cols x n] += W' [cols x rows] dY^T [rows x n],
    // where W' is W read column-major (leading dimension cols), not transposed.
    cuda_gemm(w, type, false, cols, n, rows, cols, dy, true, dx, stream);
}

void cuda_swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup, cudaStream_t stream) {
    swiglu_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(gate, up, dout, n, dgate, dup);
    MOME_CUDA_LAUNCHED("swiglu_backward_kernel");
}

void cuda_rope_norm_backward(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const CudaRope& rope,
                             cudaStream_t stream) {
    const float theta_scale = std::pow(rope.freq_base, -2.0f / static_cast<float>(rope.n_rot));
    const int64_t n = rows * n_heads * (rope.n_rot / 2);
    rope_backward_kernel<<<static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
        dx, rows, n_heads, head_dim, pos, rope.n_rot, theta_scale, rope.freq_scale, rope.freq_factors);
    MOME_CUDA_LAUNCHED("rope_backward_kernel");
}

void cuda_attention_backward(const float* q, const float* k_cache, const float* v_cache, const int32_t* visible, int64_t n_queries,
                             int64_t n_head, int64_t n_head_kv, int64_t head_dim, int64_t max_positions, const float* dout, float* dq,
                             float* dk, float* dv, cudaStream_t stream) {
    const size_t smem = 2 * sizeof(float) * static_cast<size_t>(max_positions);
    set_shared(reinterpret_cast<const void*>(attention_backward_kernel), smem);
    attention_backward_kernel<<<dim3(static_cast<unsigned>(n_queries), static_cast<unsigned>(n_head)), kThreads, smem, stream>>>(
        q, k_cache, v_cache, visible, n_head, n_head_kv, head_dim, dout, dq, dk, dv);
    MOME_CUDA_LAUNCHED("attention_backward_kernel");
}

void cuda_cross_entropy_backward(const float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float* dlogits, float* loss,
                                 cudaStream_t stream) {
    cross_entropy_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(logits, targets, n_vocab, dlogits, loss);
    MOME_CUDA_LAUNCHED("cross_entropy_kernel");
}

void cuda_lora_backward(const float* a, const float* b, const float* weights, int64_t k, int64_t rank, int64_t d, float scale,
                        const float* u, const float* dout, int64_t n, float* da, float* db, cudaStream_t stream) {
    const size_t smem = 2 * sizeof(float) * static_cast<size_t>(n);
    set_shared(reinterpret_cast<const void*>(lora_backward_kernel), smem);
    lora_backward_kernel<<<static_cast<unsigned>(k * rank), kThreads, smem, stream>>>(a, b, weights, rank, d, scale, u, dout, n, da, db);
    MOME_CUDA_LAUNCHED("lora_backward_kernel");
}

void cuda_matmul_backward_weight(const float* dy, const float* x, int64_t n, int64_t rows, int64_t cols, float* dw, cudaStream_t stream) {
    // Row-major dW [rows x cols] is column-major dW^T [cols x rows] += X^T [cols x n] (dY^T)^T [n x rows].
    cublasHandle_t h = cublas_handle();
    check_cublas(cublasSetStream(h, stream), "cublasSetStream");
    const float one = 1.0f;
    const int m = static_cast<int>(cols), nn = static_cast<int>(rows), k = static_cast<int>(n);
    check_cublas(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, m, nn, k, &one, x, m, dy, nn, &one, dw, m), "cublasSgemm");
}

void cuda_rms_norm_backward_weight(const float* x, const float* dy, int64_t rows, int64_t d, float eps, float* dweight, cudaStream_t stream) {
    if (rows < 1) return;
    rms_norm_backward_weight_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, dy, d, eps, dweight);
    MOME_CUDA_LAUNCHED("rms_norm_backward_weight_kernel");
}

void cuda_embed_backward(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dtable, cudaStream_t stream) {
    if (n < 1) return;
    embed_backward_kernel<<<blocks_for(n * d), kThreads, 0, stream>>>(dx, tokens, n, d, dtable);
    MOME_CUDA_LAUNCHED("embed_backward_kernel");
}

}  // namespace mome
