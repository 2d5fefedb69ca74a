// A synthetic model's weights generated on the device, for benchmarks of models too large to
// write as files: a counter hash of (seed, index) gives the same values on every device.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/cuda_check.h"
#include "cuda/device_types.cuh"
#include "cuda/kernel_common.cuh"
#include "model/synthetic.h"

namespace mome {

namespace {

// Uniform values in [-a, a).
template <typename T>
__global__ void fill_uniform(T* p, uint64_t n, uint64_t seed, float a) {
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x) {
        uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
        x ^= x >> 31, x *= 0xBF58476D1CE4E5B9ull, x ^= x >> 29, x *= 0x94D049BB133111EBull, x ^= x >> 32;
        p[i] = from_float<T>(a * (static_cast<float>(x >> 40) / static_cast<float>(1ull << 23) - 1.0f));
    }
}

__global__ void fill_value(float* p, uint64_t n, float value) {
    for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n; i += uint64_t(gridDim.x) * blockDim.x) p[i] = value;
}

// A [rows x cols] matrix of `type` with standard deviation `std`.
Tensor random_matrix(Backend& cuda, mome_tensor_type type, int64_t rows, int64_t cols, uint64_t seed, float std) {
    const uint64_t n = static_cast<uint64_t>(rows) * cols;
    void* p = cuda.allocate_kept(n * (type == MOME_TENSOR_TYPE_F32 ? 4 : 2));
    const float a = std * 1.7320508f;  // uniform on [-a, a) has standard deviation a / sqrt(3)
    const unsigned blocks = blocks_for(static_cast<int64_t>(n));
    if (type == MOME_TENSOR_TYPE_BF16) fill_uniform<<<blocks, kThreads>>>(static_cast<__nv_bfloat16*>(p), n, seed, a);
    else if (type == MOME_TENSOR_TYPE_F16) fill_uniform<<<blocks, kThreads>>>(static_cast<__half*>(p), n, seed, a);
    else fill_uniform<<<blocks, kThreads>>>(static_cast<float*>(p), n, seed, a);
    MOME_CUDA_LAUNCHED("fill_uniform");
    return Tensor{static_cast<const uint8_t*>(p), type, rows, cols, Device::Cuda};
}

Tensor ones(Backend& cuda, int64_t n) {
    auto* p = static_cast<float*>(cuda.allocate_kept(static_cast<uint64_t>(n) * sizeof(float)));
    fill_value<<<blocks_for(n), kThreads>>>(p, static_cast<uint64_t>(n), 1.0f);
    MOME_CUDA_LAUNCHED("fill_value");
    return Tensor{reinterpret_cast<const uint8_t*>(p), MOME_TENSOR_TYPE_F32, 1, n, Device::Cuda};
}

}  // namespace

LlamaWeights cuda_synthetic_weights(Backend& cuda, const mome_synthetic_params& p, const mome_llama_config& c,
                                    const std::vector<float>& rope_factors) {
    if (cuda.device() != Device::Cuda) fail(MOME_STATUS_UNSUPPORTED, "weights generated on the device need the CUDA backend");
    DeviceScope scope(cuda.device_index());
    const int64_t D = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    uint64_t seed = p.seed * 0x100000001B3ull;
    auto next = [&](int64_t rows, int64_t cols) { return random_matrix(cuda, p.weight_type, rows, cols, ++seed, p.init_std); };
    LlamaWeights w;
    w.token_embd = next(c.n_vocab, D);
    w.output = p.tied_output ? w.token_embd : next(c.n_vocab, D);
    w.output_norm = ones(cuda, D);
    if (!rope_factors.empty()) {
        const Tensor host{reinterpret_cast<const uint8_t*>(rope_factors.data()), MOME_TENSOR_TYPE_F32, 1,
                          static_cast<int64_t>(rope_factors.size())};
        w.rope_freqs = cuda.to_device(host);
    }
    for (int64_t l = 0; l < c.n_layer; ++l) {
        LayerWeights d;
        d.attn_norm = ones(cuda, D), d.ffn_norm = ones(cuda, D);
        d.wq = next(q_dim, D), d.wk = next(kv_dim, D), d.wv = next(kv_dim, D), d.wo = next(D, q_dim);
        d.gate = next(c.n_ff, D), d.up = next(c.n_ff, D), d.down = next(D, c.n_ff);
        w.layers.push_back(d);
    }
    MOME_CUDA(cudaDeviceSynchronize());
    return w;
}

}  // namespace mome
