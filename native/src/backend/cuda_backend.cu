// The CUDA backend: the ops of backend/backend.h as the kernels of cuda/model_ops.h,
// cuda/backward_ops.h and cuda/lora.cu (dense projections through cuBLAS), queued on one
// stream of one device. Memory is stream-ordered (cudaMallocAsync); weights and tables the
// backend keeps are freed when it ends.
#include <cuda_runtime.h>

#include <numeric>
#include <vector>

#include "backend/backend.h"
#include "core/cuda_backend.h"
#include "cuda/backward_ops.h"
#include "cuda/cuda_check.h"
#include "cuda/kernel_common.cuh"
#include "cuda/model_ops.h"

namespace mome {

namespace {

__global__ void store_kv_kernel(const float* __restrict__ k, const float* __restrict__ v, const int32_t* __restrict__ seq_ids,
                                const int32_t* __restrict__ positions, int64_t n, int64_t kv_dim, int64_t v_dim, int64_t n_ctx,
                                float* __restrict__ k_cache, float* __restrict__ v_cache) {
    const int64_t width = kv_dim > v_dim ? kv_dim : v_dim;
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n * width; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t t = i / width, e = i % width;
        const int64_t slot = static_cast<int64_t>(seq_ids ? seq_ids[t] : 0) * n_ctx + positions[t];
        if (e < kv_dim) k_cache[slot * kv_dim + e] = k[t * kv_dim + e];
        if (e < v_dim) v_cache[slot * v_dim + e] = v[t * v_dim + e];
    }
}

CudaRope cuda_rope(const RopeParams& p) { return CudaRope{p.n_rot, p.freq_base, p.freq_scale, p.freq_factors}; }

uint64_t tensor_bytes(const Tensor& t) {
    if (t.type != MOME_TENSOR_TYPE_F32 && t.type != MOME_TENSOR_TYPE_F16 && t.type != MOME_TENSOR_TYPE_BF16)
        fail(MOME_STATUS_UNSUPPORTED, "the CUDA backend computes with F32, F16 and BF16 tensors only");
    return static_cast<uint64_t>(t.elements()) * (t.type == MOME_TENSOR_TYPE_F32 ? 4 : 2);
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device) : device_(device) {
        DeviceScope scope(device_);
        MOME_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }
    ~CudaBackend() override {
        int previous = 0;
        const bool restore = cudaGetDevice(&previous) == cudaSuccess && previous != device_;
        cudaSetDevice(device_);
        if (stream_) cudaStreamSynchronize(stream_);
        for (void* p : kept_) cudaFree(p);
        if (stream_) cudaStreamDestroy(stream_);
        if (restore) cudaSetDevice(previous);
    }

    const char* name() const override { return "cuda"; }
    Device device() const override { return Device::Cuda; }
    int device_index() const override { return device_; }
    bool supports_type(mome_tensor_type type) const override { return backend_kind_supports_type(MOME_BACKEND_CUDA, type); }
    bool supports_op(Op op, mome_tensor_type type) const override {
        if (op == Op::LoraBackward) return type == MOME_TENSOR_TYPE_F32;  // one segment, local tables in route order
        return supports_type(type);
    }

    void* allocate(uint64_t bytes) override {
        DeviceScope scope(device_);
        void* p = nullptr;
        MOME_CUDA(cudaMallocAsync(&p, std::max<uint64_t>(bytes, 1), stream_));
        return p;
    }
    void free(void* ptr) override {
        DeviceScope scope(device_);
        cudaFreeAsync(ptr, stream_);
    }
    void* allocate_kept(uint64_t bytes) override {
        DeviceScope scope(device_);
        void* p = nullptr;
        MOME_CUDA(cudaMalloc(&p, std::max<uint64_t>(bytes, 1)));
        kept_.push_back(p);
        return p;
    }
    void upload(void* dst, const void* src, uint64_t bytes) override {
        DeviceScope scope(device_);
        MOME_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
        // The host buffer may be a temporary of the caller: finish reading it before returning.
        MOME_CUDA(cudaStreamSynchronize(stream_));
    }
    void download(void* dst, const void* src, uint64_t bytes) override {
        DeviceScope scope(device_);
        MOME_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
        MOME_CUDA(cudaStreamSynchronize(stream_));
    }
    void copy(void* dst, const void* src, uint64_t bytes) override {
        DeviceScope scope(device_);
        MOME_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    }
    void zero(void* ptr, uint64_t bytes) override {
        DeviceScope scope(device_);
        MOME_CUDA(cudaMemsetAsync(ptr, 0, bytes, stream_));
    }
    Tensor to_device(const Tensor& host) override {
        const uint64_t bytes = tensor_bytes(host);
        void* p = allocate_kept(bytes);
        DeviceScope scope(device_);
        MOME_CUDA(cudaMemcpy(p, host.data, bytes, cudaMemcpyHostToDevice));
        Tensor t = host;
        t.data = static_cast<const uint8_t*>(p);
        t.device = Device::Cuda;
        return t;
    }

    void embed(const Tensor& table, const int32_t* tokens, int64_t n, float* x) override {
        DeviceScope scope(device_);
        cuda_embed(table, tokens, n, x, stream_);
    }
    void add(float* x, const float* y, int64_t n) override {
        DeviceScope scope(device_);
        cuda_add(x, y, n, stream_);
    }
    void scale(float* x, float s, int64_t n) override {
        DeviceScope scope(device_);
        cuda_scale(x, s, n, stream_);
    }
    void gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out) override {
        DeviceScope scope(device_);
        cuda_gather_rows(x, rows, n_rows, d, out, stream_);
    }
    void scatter_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out) override {
        DeviceScope scope(device_);
        cuda_scatter_rows(x, rows, n_rows, d, out, stream_);
    }
    void argmax_rows(const float* x, int64_t n, int64_t d, int32_t* out) override {
        DeviceScope scope(device_);
        cuda_argmax_rows(x, n, d, out, stream_);
    }
    void rms_norm(const float* x, const Tensor& weight, int64_t rows, float eps, float* out) override {
        DeviceScope scope(device_);
        cuda_rms_norm(x, weight.f32(), rows, weight.cols, eps, out, stream_);
    }
    void rope(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) override {
        DeviceScope scope(device_);
        cuda_rope_norm(x, rows, n_heads, head_dim, pos, cuda_rope(p), stream_);
    }
    void matmul(const Tensor& W, const float* X, int64_t n, float* Y) override {
        DeviceScope scope(device_);
        cuda_matmul(W.data, W.type, W.rows, W.cols, X, n, Y, stream_);
    }
    void store_kv(const float* k, const float* v, const int32_t* seq_ids, const int32_t* positions, int64_t n, int64_t kv_dim,
                  int64_t v_dim, int64_t seq_positions, float* k_cache, float* v_cache) override {
        DeviceScope scope(device_);
        store_kv_kernel<<<blocks_for(n * std::max(kv_dim, v_dim)), kThreads, 0, stream_>>>(k, v, seq_ids, positions, n, kv_dim, v_dim,
                                                                                          seq_positions, k_cache, v_cache);
        MOME_CUDA_LAUNCHED("store_kv_kernel");
    }
    void attention(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, const int32_t* visible,
                   int64_t n, const AttentionShape& a, float* out) override {
        DeviceScope scope(device_);
        if (a.seq_positions > cuda_attention_max_positions())
            fail(MOME_STATUS_UNSUPPORTED, format("CUDA attention holds at most %lld positions per sequence, not %lld",
                                                 static_cast<long long>(cuda_attention_max_positions()),
                                                 static_cast<long long>(a.seq_positions)));
        cuda_attention(q, k_cache, v_cache, seq_ids, a.seq_positions, visible, n, a.n_head, a.n_head_kv, a.head_dim, a.seq_positions, out,
                       stream_);
    }
    void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
        DeviceScope scope(device_);
        cuda_swiglu(gate, up, n, out, stream_);
    }
    void lora_apply(const LoraTables& t, const LoraBatch& b, float* out) override {
        DeviceScope scope(device_);
        const mome_lora_desc desc{static_cast<uint32_t>(sizeof(mome_lora_desc)), t.type, t.n_experts, t.dim, t.rank, t.a, t.b};
        cuda_lora_apply(device_, desc, b.u, b.n_tokens, b.segment_offsets, b.n_segments, b.indices, b.weights, b.top_k, b.scale, out,
                        stream_);
    }

    void rms_norm_backward(const float* x, const Tensor& weight, const float* dy, int64_t rows, float eps, float* dx) override {
        DeviceScope scope(device_);
        cuda_rms_norm_backward(x, weight.f32(), dy, rows, weight.cols, eps, dx, stream_);
    }
    void matmul_backward_input(const Tensor& W, const float* dY, int64_t n, float* dX) override {
        DeviceScope scope(device_);
        cuda_matmul_backward_input(W.data, W.type, W.rows, W.cols, dY, n, dX, stream_);
    }
    void rope_backward(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) override {
        DeviceScope scope(device_);
        cuda_rope_norm_backward(dx, rows, n_heads, head_dim, pos, cuda_rope(p), stream_);
    }
    void attention_backward(const float* q, const float* k_cache, const float* v_cache, const int32_t* visible, int64_t n,
                            const AttentionShape& a, const float* dout, float* dq, float* dk, float* dv) override {
        DeviceScope scope(device_);
        cuda_attention_backward(q, k_cache, v_cache, visible, n, a.n_head, a.n_head_kv, a.head_dim, a.seq_positions, dout, dq, dk, dv,
                                stream_);
    }
    void swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup) override {
        DeviceScope scope(device_);
        cuda_swiglu_backward(gate, up, dout, n, dgate, dup, stream_);
    }
    void cross_entropy_backward(const float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float* dlogits,
                                float* loss) override {
        DeviceScope scope(device_);
        cuda_cross_entropy_backward(logits, targets, n, n_vocab, dlogits, loss, stream_);
    }
    // The kernel serves one segment whose tables hold its experts in route order (indices
    // 0..k-1), as memory tuning gathers them; anything else is refused.
    void lora_backward(const LoraTables& t, const LoraBatch& b, const float* dout, float* dA, float* dB) override {
        if (t.type != MOME_TENSOR_TYPE_F32) fail(MOME_STATUS_UNSUPPORTED, "the LoRA backward takes F32 expert tables");
        if (b.n_segments != 1) fail(MOME_STATUS_UNSUPPORTED, "the CUDA LoRA backward serves one segment (routing per sequence)");
        std::vector<int32_t> iota(static_cast<size_t>(b.top_k));
        std::iota(iota.begin(), iota.end(), 0);
        if (mome::download(*this, b.indices, b.top_k) != iota || t.n_experts < b.top_k)
            fail(MOME_STATUS_UNSUPPORTED, "the CUDA LoRA backward takes the route's experts as tables in route order");
        const int64_t per_table = static_cast<int64_t>(b.top_k) * t.rank * t.dim;
        Buffer da = floats(*this, per_table), db = floats(*this, per_table);
        DeviceScope scope(device_);
        cuda_lora_backward(reinterpret_cast<const float*>(t.a), reinterpret_cast<const float*>(t.b), b.weights, b.top_k, t.rank, t.dim,
                           b.scale, b.u, dout, b.n_tokens, da.as(), db.as(), stream_);
        cuda_add(dA, da.as(), per_table, stream_);
        cuda_add(dB, db.as(), per_table, stream_);
    }
    void matmul_backward_weight(const float* dY, const float* X, int64_t n, int64_t rows, int64_t cols, float* dW) override {
        DeviceScope scope(device_);
        cuda_matmul_backward_weight(dY, X, n, rows, cols, dW, stream_);
    }
    void rms_norm_backward_weight(const float* x, const float* dy, int64_t rows, int64_t d, float eps, float* dweight) override {
        DeviceScope scope(device_);
        cuda_rms_norm_backward_weight(x, dy, rows, d, eps, dweight, stream_);
    }
    void embed_backward(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dtable) override {
        DeviceScope scope(device_);
        cuda_embed_backward(dx, tokens, n, d, dtable, stream_);
    }

private:
    int device_;
    cudaStream_t stream_ = nullptr;
    std::vector<void*> kept_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

}  // namespace mome
