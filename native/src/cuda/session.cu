// A session's forward pass on CUDA: the model's weights (in their stored type) and the KV
// cache live on one device; the projections run through cuBLAS, the rest through
// cuda/model_ops.h, in the order of run_batch on the CPU (model/session.cpp). A memory bank's
// expert tables are copied to the device when the session is made (later changes to the
// bank are not seen); routes are made on the host by the bank's router. Logits are copied
// back to the host at the end of each batch.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/device_types.cuh"
#include "cuda/kernel_common.cuh"
#include "cuda/model_ops.h"
#include "cuda/session_state.h"
#include "memory/memory_layer.h"
#include "model/session.h"

namespace mome {

namespace {

// Row t of k and v into sequence seq_ids[t]'s cache at position positions[t].
__global__ void store_kv(const float* __restrict__ k, const float* __restrict__ v, const int32_t* __restrict__ seq_ids,
                         const int32_t* __restrict__ positions, int64_t n, int64_t kv_dim, int64_t n_ctx, float* __restrict__ k_cache,
                         float* __restrict__ v_cache) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n * kv_dim; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t t = i / kv_dim, e = i % kv_dim;
        const int64_t slot = static_cast<int64_t>(seq_ids[t]) * n_ctx + positions[t];
        k_cache[slot * kv_dim + e] = k[i];
        v_cache[slot * kv_dim + e] = v[i];
    }
}

void matmul(const CudaSession& cs, const DeviceMatrix& w, const float* x, int64_t n, float* y) { cuda_matmul(w, x, n, y, cs.stream); }


// The memory layer's delta for the batch's normalised inputs u (device, [n x D]) into
// `delta` (device): routes are made on the host by route_batch, exactly as a CPU session
// makes them (from the downloaded inputs), then grouped LoRA runs on the device over the
// experts' tables copied there.
void memory_delta(mome_session& s, CudaSession& cs, int slot, const mome_batch& b, const float* u, int64_t n, float* delta) {
    const mome_bank& bank = *s.bank;
    const mome_bank_params& p = bank.params;
    const int64_t D = s.config.n_embd;
    std::vector<float> host_u(static_cast<size_t>(n * D));
    MOME_CUDA(cudaMemcpyAsync(host_u.data(), u, host_u.size() * sizeof(float), cudaMemcpyDeviceToHost, cs.stream));
    MOME_CUDA(cudaStreamSynchronize(cs.stream));
    const BatchRoutes routes = route_batch(s, slot, b, host_u.data(), n);
    const std::vector<int32_t>& order = routes.order;
    const std::vector<int64_t>& offsets = routes.offsets;
    const std::vector<int32_t>& indices = routes.indices;
    const std::vector<float>& weights = routes.weights;
    const int64_t n_segments = static_cast<int64_t>(offsets.size()) - 1;
    const uint64_t bytes = offsets.size() * 8 + order.size() * 4 + indices.size() * 4 + weights.size() * 4;
    const StreamScratch meta(bytes, cs.stream);
    auto* d_offsets = meta.as<int64_t>();
    auto* d_order = reinterpret_cast<int32_t*>(d_offsets + offsets.size());
    auto* d_indices = d_order + order.size();
    auto* d_weights = reinterpret_cast<float*>(d_indices + indices.size());
    MOME_CUDA(cudaMemcpyAsync(d_offsets, offsets.data(), offsets.size() * 8, cudaMemcpyHostToDevice, cs.stream));
    MOME_CUDA(cudaMemcpyAsync(d_order, order.data(), order.size() * 4, cudaMemcpyHostToDevice, cs.stream));
    MOME_CUDA(cudaMemcpyAsync(d_indices, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice, cs.stream));
    MOME_CUDA(cudaMemcpyAsync(d_weights, weights.data(), weights.size() * 4, cudaMemcpyHostToDevice, cs.stream));
    const StreamScratch grouped(2 * static_cast<uint64_t>(n) * D * sizeof(float), cs.stream);
    float* grouped_u = grouped.as<float>();
    float* grouped_delta = grouped_u + n * D;
    cuda_gather_rows(u, d_order, n, D, grouped_u, cs.stream);
    MOME_CUDA(cudaMemsetAsync(grouped_delta, 0, static_cast<uint64_t>(n) * D * sizeof(float), cs.stream));
    const mome_lora_desc experts{p.weight_type, p.n_experts, D, p.rank, cs.bank_a[static_cast<size_t>(slot)], cs.bank_b[static_cast<size_t>(slot)]};
    cuda_lora_apply(cs.device, experts, grouped_u, n, d_offsets, n_segments, d_indices, d_weights, p.top_k, p.alpha / static_cast<float>(p.rank),
                    grouped_delta, cs.stream);
    cuda_scatter_rows(grouped_delta, d_order, n, D, delta, cs.stream);
}


// Uniform values in [-a, a) from a counter hash of (seed, index): the same on every device.
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

// A [rows x cols] matrix of `type` with standard deviation `std`, generated on the device.
DeviceMatrix random_matrix(CudaSession& cs, mome_tensor_type type, int64_t rows, int64_t cols, uint64_t seed, float std) {
    const uint64_t n = static_cast<uint64_t>(rows) * cols;
    void* p = cs.allocate(n * (type == MOME_TENSOR_TYPE_F32 ? 4 : 2));
    const float a = std * 1.7320508f;  // uniform on [-a, a) has standard deviation a / sqrt(3)
    const unsigned blocks = blocks_for(static_cast<int64_t>(n));
    if (type == MOME_TENSOR_TYPE_BF16) fill_uniform<<<blocks, kThreads, 0, cs.stream>>>(static_cast<__nv_bfloat16*>(p), n, seed, a);
    else if (type == MOME_TENSOR_TYPE_F16) fill_uniform<<<blocks, kThreads, 0, cs.stream>>>(static_cast<__half*>(p), n, seed, a);
    else fill_uniform<<<blocks, kThreads, 0, cs.stream>>>(static_cast<float*>(p), n, seed, a);
    MOME_CUDA_LAUNCHED("fill_uniform");
    return DeviceMatrix{p, type, rows, cols};
}

float* ones(CudaSession& cs, int64_t n) {
    auto* p = static_cast<float*>(cs.allocate(static_cast<uint64_t>(n) * sizeof(float)));
    fill_value<<<blocks_for(n), kThreads, 0, cs.stream>>>(p, static_cast<uint64_t>(n), 1.0f);
    MOME_CUDA_LAUNCHED("fill_value");
    return p;
}

// The KV cache of every layer, and checks shared by both ways of making a session.
void allocate_caches(CudaSession& cs, const mome_session& s) {
    const mome_llama_config& c = s.config;
    if (c.head_dim_v != c.head_dim) fail(MOME_STATUS_UNSUPPORTED, "CUDA sessions need equal key and value head sizes");
    if (s.n_ctx > cuda_attention_max_positions())
        fail(MOME_STATUS_UNSUPPORTED, format("a CUDA session holds at most %lld positions per sequence for now, not %d",
                                             static_cast<long long>(cuda_attention_max_positions()), s.n_ctx));
    const uint64_t cache = static_cast<uint64_t>(s.n_seq) * s.n_ctx * c.n_head_kv * c.head_dim * sizeof(float);
    for (int64_t l = 0; l < c.n_layer; ++l) {
        cs.k_cache.push_back(static_cast<float*>(cs.allocate(cache)));
        cs.v_cache.push_back(static_cast<float*>(cs.allocate(cache)));
    }
}

}  // namespace

CudaSession* cuda_session_create(const mome_session& s, int device) {
    DeviceScope scope(device);
    auto cs = std::make_unique<CudaSession>();
    cs->device = device;
    try {
        MOME_CUDA(cudaStreamCreateWithFlags(&cs->stream, cudaStreamNonBlocking));
        const LlamaWeights& w = s.weights;
        cs->token_embd = cs->upload(w.token_embd);
        cs->output = w.output.data == w.token_embd.data ? cs->token_embd : cs->upload(w.output);
        cs->output_norm = cs->upload(w.output_norm.data(), w.output_norm.size());
        if (!w.rope_freqs.empty()) cs->rope_freqs = cs->upload(w.rope_freqs.data(), w.rope_freqs.size());
        for (const LayerWeights& L : w.layers) {
            DeviceLayer d;
            d.attn_norm = cs->upload(L.attn_norm.data(), L.attn_norm.size());
            d.ffn_norm = cs->upload(L.ffn_norm.data(), L.ffn_norm.size());
            d.wq = cs->upload(L.wq), d.wk = cs->upload(L.wk), d.wv = cs->upload(L.wv), d.wo = cs->upload(L.wo);
            d.gate = cs->upload(L.gate), d.up = cs->upload(L.up), d.down = cs->upload(L.down);
            cs->layers.push_back(d);
        }
        if (s.bank)
            for (const MemoryLayer& m : s.bank->layers) {
                cs->bank_a.push_back(cs->upload(m.a.data, m.a.size));
                cs->bank_b.push_back(cs->upload(m.b.data, m.b.size));
            }
        allocate_caches(*cs, s);
    } catch (...) {
        destroy_cuda_session(cs.release());
        throw;
    }
    return cs.release();
}

CudaSession* cuda_session_create_synthetic(const mome_session& s, int device, const mome_synthetic_params& p,
                                           const std::vector<float>& rope_factors) {
    const mome_llama_config& c = s.config;
    DeviceScope scope(device);
    auto cs = std::make_unique<CudaSession>();
    cs->device = device;
    try {
        MOME_CUDA(cudaStreamCreateWithFlags(&cs->stream, cudaStreamNonBlocking));
        const int64_t D = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
        uint64_t seed = p.seed * 0x100000001B3ull;
        auto next = [&](int64_t rows, int64_t cols) { return random_matrix(*cs, p.weight_type, rows, cols, ++seed, p.init_std); };
        cs->token_embd = next(c.n_vocab, D);
        cs->output = p.tied_output ? cs->token_embd : next(c.n_vocab, D);
        cs->output_norm = ones(*cs, D);
        if (!rope_factors.empty()) cs->rope_freqs = cs->upload(rope_factors.data(), rope_factors.size());
        for (int64_t l = 0; l < c.n_layer; ++l) {
            DeviceLayer d;
            d.attn_norm = ones(*cs, D), d.ffn_norm = ones(*cs, D);
            d.wq = next(q_dim, D), d.wk = next(kv_dim, D), d.wv = next(kv_dim, D), d.wo = next(D, q_dim);
            d.gate = next(c.n_ff, D), d.up = next(c.n_ff, D), d.down = next(D, c.n_ff);
            cs->layers.push_back(d);
        }
        allocate_caches(*cs, s);
        MOME_CUDA(cudaStreamSynchronize(cs->stream));
    } catch (...) {
        destroy_cuda_session(cs.release());
        throw;
    }
    return cs.release();
}

void destroy_cuda_session(CudaSession* cs) {
    if (!cs) return;
    int previous = 0;
    const bool restore = cudaGetDevice(&previous) == cudaSuccess && previous != cs->device;
    cudaSetDevice(cs->device);
    for (void* p : cs->allocations) cudaFree(p);
    if (cs->stream) cudaStreamDestroy(cs->stream);
    if (restore) cudaSetDevice(previous);
    delete cs;
}

void cuda_session_run(mome_session& s, const mome_batch& b, float* logits, int64_t n, int64_t n_out) {
    CudaSession& cs = *s.cuda;
    const mome_llama_config& c = s.config;
    DeviceScope scope(cs.device);
    const cudaStream_t stream = cs.stream;
    const int64_t D = c.n_embd, q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim, n_ff = c.n_ff;

    // The batch's integers: tokens, positions, sequence ids, visible positions, output rows.
    std::vector<int32_t> ints(static_cast<size_t>(5 * n), 0);
    std::vector<int32_t> wanted;
    for (int64_t t = 0; t < n; ++t) {
        ints[static_cast<size_t>(t)] = b.tokens[t];
        ints[static_cast<size_t>(n + t)] = b.positions[t];
        ints[static_cast<size_t>(2 * n + t)] = b.seq_ids[t];
        ints[static_cast<size_t>(3 * n + t)] = b.positions[t] + 1;
        if (b.want_logits ? b.want_logits[t] != 0 : t == n - 1) wanted.push_back(static_cast<int32_t>(t));
    }
    std::copy(wanted.begin(), wanted.end(), ints.begin() + 4 * n);
    const StreamScratch d_ints(ints.size() * sizeof(int32_t), stream);
    MOME_CUDA(cudaMemcpyAsync(d_ints.as<int32_t>(), ints.data(), ints.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
    const int32_t* tokens = d_ints.as<int32_t>();
    const int32_t* positions = tokens + n;
    const int32_t* seq_ids = tokens + 2 * n;
    const int32_t* visible = tokens + 3 * n;
    const int32_t* out_rows = tokens + 4 * n;

    const uint64_t floats = static_cast<uint64_t>(n) * (4 * D + 2 * q_dim + 2 * kv_dim + 3 * n_ff);
    const StreamScratch scratch(floats * sizeof(float), stream);
    float* x = scratch.as<float>();
    float* cur = x + n * D;
    float* o = cur + n * D;
    float* q = o + n * D;
    float* attn = q + n * q_dim;
    float* k = attn + n * q_dim;
    float* v = k + n * kv_dim;
    float* gate = v + n * kv_dim;
    float* up = gate + n * n_ff;
    float* h = up + n * n_ff;
    float* memory = h + n * n_ff;  // the memory layer's delta

    cuda_embed(cs.token_embd, tokens, n, x, stream);

    const CudaRope rope{c.n_rot, c.rope_freq_base, c.rope_freq_scale, cs.rope_freqs};
    for (int64_t l = 0; l < c.n_layer; ++l) {
        const DeviceLayer& L = cs.layers[static_cast<size_t>(l)];
        cuda_rms_norm(x, L.attn_norm, n, D, c.rms_norm_eps, cur, stream);
        matmul(cs, L.wq, cur, n, q);
        matmul(cs, L.wk, cur, n, k);
        matmul(cs, L.wv, cur, n, v);
        cuda_rope_norm(q, n, c.n_head, c.head_dim, positions, rope, stream);
        cuda_rope_norm(k, n, c.n_head_kv, c.head_dim, positions, rope, stream);
        store_kv<<<blocks_for(n * kv_dim), kThreads, 0, stream>>>(k, v, seq_ids, positions, n, kv_dim, s.n_ctx, cs.k_cache[static_cast<size_t>(l)],
                                                                 cs.v_cache[static_cast<size_t>(l)]);
        MOME_CUDA_LAUNCHED("store_kv");
        cuda_attention(q, cs.k_cache[static_cast<size_t>(l)], cs.v_cache[static_cast<size_t>(l)], seq_ids, s.n_ctx, visible, n, c.n_head,
                       c.n_head_kv, c.head_dim, s.n_ctx, attn, stream);
        matmul(cs, L.wo, attn, n, o);
        cuda_add(x, o, n * D, stream);
        cuda_rms_norm(x, L.ffn_norm, n, D, c.rms_norm_eps, cur, stream);
        // The memory layer reads the same input as the MLP and adds beside it.
        const int slot = s.bank ? s.bank->slot_of_block(l) : -1;
        if (slot >= 0) memory_delta(s, cs, slot, b, cur, n, memory);
        matmul(cs, L.gate, cur, n, gate);
        matmul(cs, L.up, cur, n, up);
        cuda_swiglu(gate, up, n * n_ff, h, stream);
        matmul(cs, L.down, h, n, o);
        cuda_add(x, o, n * D, stream);
        if (slot >= 0) cuda_add(x, memory, n * D, stream);
    }
    if (n_out > 0) {
        const StreamScratch out(static_cast<uint64_t>(n_out) * (2 * D + c.n_vocab) * sizeof(float), stream);
        float* rows = out.as<float>();
        float* normed = rows + n_out * D;
        float* result = normed + n_out * D;
        cuda_gather_rows(x, out_rows, n_out, D, rows, stream);
        cuda_rms_norm(rows, cs.output_norm, n_out, D, c.rms_norm_eps, normed, stream);
        matmul(cs, cs.output, normed, n_out, result);
        MOME_CUDA(cudaMemcpyAsync(logits, result, static_cast<uint64_t>(n_out) * c.n_vocab * sizeof(float), cudaMemcpyDeviceToHost, stream));
    }
    MOME_CUDA(cudaStreamSynchronize(stream));
}

}  // namespace mome
