// The backend interface: memory on one device and the operators of the Llama layer graph,
// forward and backward, over it. Three instances: `cpu-ref` (the readable reference loops of
// cpu/ops.h, one thread), `cpu-fast` (SIMD kernels, rows and tokens over a thread pool) and
// `cuda` (kernels and cuBLAS on one device, queued on the backend's stream). The graph
// (model/llama_graph.h) is written once over this interface; tests/native/backend_ops checks
// every op of every backend present against cpu-ref.
//
// Conventions: activations are F32 arrays on the backend's device (`float*`); weights and
// tables are tensor views on that device; integer arrays (tokens, positions, ...) are on the
// device too (upload them with `upload`). Rows are row-major. An op may queue work: results
// are ready on the host after `download` (which waits).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "cpu/lora.h"
#include "cpu/ops.h"

namespace mome {

class ThreadPool;

enum class Op {
    Embed, Add, Scale, GatherRows, ScatterRows, ArgmaxRows, RmsNorm, Rope, Matmul, StoreKv, Attention, Swiglu, LoraApply,
    RmsNormBackward, MatmulBackwardInput, RopeBackward, AttentionBackward, SwigluBackward, CrossEntropyBackward, LoraBackward,
    MatmulBackwardWeight, RmsNormBackwardWeight, EmbedBackward,
};

const char* op_name(Op op);

// Where queries read a KV cache: query t of a batch reads sequence seq_ids[t] (null: 0), whose
// keys/values are `seq_positions` rows apart, and sees its positions 0 .. visible[t]-1 (at
// most seq_positions). Keys and values have the same head size.
struct AttentionShape {
    int64_t n_head = 0, n_head_kv = 0, head_dim = 0;
    int64_t seq_positions = 0;  // rows per sequence in the cache
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;  // "cpu-ref", "cpu-fast", "cuda"
    virtual Device device() const = 0;
    virtual int device_index() const { return 0; }  // which GPU, on a GPU backend
    virtual bool supports_type(mome_tensor_type type) const = 0;
    // Whether `op` runs here with weights or tables of `type` (F32 for ops without weights).
    virtual bool supports_op(Op op, mome_tensor_type type) const = 0;

    // Memory on the device: `allocate` lives until `free`; `allocate_kept` (weights, tables)
    // until the backend ends. Copies between host and device.
    virtual void* allocate(uint64_t bytes) = 0;
    virtual void free(void* ptr) = 0;
    virtual void* allocate_kept(uint64_t bytes) = 0;
    virtual void upload(void* device_dst, const void* host_src, uint64_t bytes) = 0;
    virtual void download(void* host_dst, const void* device_src, uint64_t bytes) = 0;  // waits
    virtual void copy(void* device_dst, const void* device_src, uint64_t bytes) = 0;
    virtual void zero(void* device_ptr, uint64_t bytes) = 0;
    // A host tensor as a tensor of this device: the same view on the CPU, a copy the backend
    // keeps until it ends on a GPU.
    virtual Tensor to_device(const Tensor& host) = 0;

    // --- forward ---------------------------------------------------------------------------
    // x[t] = row tokens[t] of `table` as F32 (quantized rows dequantized).
    virtual void embed(const Tensor& table, const int32_t* tokens, int64_t n, float* x) = 0;
    virtual void add(float* x, const float* y, int64_t n) = 0;  // x += y
    virtual void scale(float* x, float s, int64_t n) = 0;       // x *= s
    // out[i] = x[rows[i]] and out[rows[i]] = x[i], rows of d floats.
    virtual void gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out) = 0;
    virtual void scatter_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out) = 0;
    // The index of each row's largest value (lowest index on ties).
    virtual void argmax_rows(const float* x, int64_t n, int64_t d, int32_t* out) = 0;
    // out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight (an F32 [1 x d] tensor).
    virtual void rms_norm(const float* x, const Tensor& weight, int64_t rows, float eps, float* out) = 0;
    // In place: row r (n_heads x head_dim) rotated for position pos[r].
    virtual void rope(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& rope) = 0;
    // Y [n x W.rows] = X [n x W.cols] W^T, X rounded first as ggml rounds activations for W's
    // type (F16/BF16 rounding, Q8 blocks for quantized weights); X is not changed.
    virtual void matmul(const Tensor& W, const float* X, int64_t n, float* Y) = 0;
    // matmul over a batch that stands for several calls: tokens [0, calls[0]) were one call,
    // the next calls[1] another, ... (adding up to n). Where ggml picks the kernel, and so the
    // order of the sums, by the size of the call (Q4_0/Q4_K, quant/quant.h), each token is
    // summed as its own call would sum it; for every other weight this is matmul.
    virtual void matmul_calls(const Tensor& W, const float* X, int64_t n, const std::vector<int64_t>& calls, float* Y) {
        (void)calls;
        matmul(W, X, n, Y);
    }
    // Rows t of k [n x kv_dim] and v [n x v_dim] into the caches at slot
    // seq_ids[t] * seq_positions + positions[t].
    virtual void store_kv(const float* k, const float* v, const int32_t* seq_ids, const int32_t* positions, int64_t n,
                          int64_t kv_dim, int64_t v_dim, int64_t seq_positions, float* k_cache, float* v_cache) = 0;
    // Causal attention (scale 1/sqrt(head_dim), GQA: query head h reads KV head
    // h / (n_head / n_head_kv)) of n query rows [n x n_head x head_dim] into out.
    virtual void attention(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids,
                           const int32_t* visible, int64_t n, const AttentionShape& shape, float* out) = 0;
    // attention over a batch that stands for several calls (as matmul_calls): the CPU
    // backends sum a token's values as llama.cpp does in a call of its size (one token, or
    // more); for the others this is attention.
    virtual void attention_calls(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids,
                                 const int32_t* visible, int64_t n, const AttentionShape& shape, const std::vector<int64_t>& calls,
                                 float* out) {
        (void)calls;
        attention(q, k_cache, v_cache, seq_ids, visible, n, shape, out);
    }
    virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) = 0;  // silu(gate) * up
    // Grouped LoRA (memory/lora.h) over tables and a batch whose arrays are on this device:
    // out[t] += scale * sum_j w_j B_e (A_e u_t).
    virtual void lora_apply(const LoraTables& tables, const LoraBatch& batch, float* out) = 0;

    // --- backward (activation gradients: the base model is frozen) -------------------------
    virtual void rms_norm_backward(const float* x, const Tensor& weight, const float* dy, int64_t rows, float eps, float* dx) = 0;
    // dX [n x W.cols] += dY [n x W.rows] W.
    virtual void matmul_backward_input(const Tensor& W, const float* dY, int64_t n, float* dX) = 0;
    virtual void rope_backward(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& rope) = 0;
    // Backward of `attention` for one sequence (seq_ids null): dq overwritten, dk and dv
    // accumulated into cache-shaped buffers.
    virtual void attention_backward(const float* q, const float* k_cache, const float* v_cache, const int32_t* visible, int64_t n,
                                    const AttentionShape& shape, const float* dout, float* dq, float* dk, float* dv) = 0;
    virtual void swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup) = 0;
    // Per row: loss[t] = cross-entropy of logits[t] against targets[t]; dlogits = softmax - onehot.
    virtual void cross_entropy_backward(const float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float* dlogits,
                                        float* loss) = 0;
    // The LoRA backward for F32 tables: dA and dB (zeroed by the caller) accumulate.
    virtual void lora_backward(const LoraTables& tables, const LoraBatch& batch, const float* dout, float* dA, float* dB) = 0;

    // --- weight gradients (fine-tuning trains the weights themselves) -----------------------
    // dW [rows x cols] += dY^T X for Y [n x rows] = X [n x cols] W^T.
    virtual void matmul_backward_weight(const float* dY, const float* X, int64_t n, int64_t rows, int64_t cols, float* dW) = 0;
    // dweight [d] += sum over rows of dy * x / sqrt(mean(x^2) + eps), for rms_norm's weight.
    virtual void rms_norm_backward_weight(const float* x, const float* dy, int64_t rows, int64_t d, float eps, float* dweight) = 0;
    // dtable[tokens[t]] += dx[t] (rows of d), for embed's F32 table.
    virtual void embed_backward(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dtable) = 0;
};

// A device array that frees itself.
class Buffer {
public:
    Buffer() = default;
    Buffer(Backend& backend, uint64_t bytes) : backend_(&backend), ptr_(backend.allocate(bytes)) {}
    ~Buffer() { reset(); }
    Buffer(Buffer&& o) noexcept : backend_(o.backend_), ptr_(o.ptr_) { o.ptr_ = nullptr; }
    Buffer& operator=(Buffer&& o) noexcept {
        if (this != &o) {
            reset();
            backend_ = o.backend_, ptr_ = o.ptr_, o.ptr_ = nullptr;
        }
        return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    template <typename T = float>
    T* as() const { return static_cast<T*>(ptr_); }
    void reset() {
        if (ptr_) backend_->free(ptr_);
        ptr_ = nullptr;
    }

private:
    Backend* backend_ = nullptr;
    void* ptr_ = nullptr;
};

// n floats (zeroed when asked).
Buffer floats(Backend& backend, int64_t n, bool zero = false);
// A host vector copied to the device.
template <typename T>
Buffer upload(Backend& backend, const std::vector<T>& host) {
    Buffer b(backend, std::max<uint64_t>(host.size(), 1) * sizeof(T));
    if (!host.empty()) backend.upload(b.as<void>(), host.data(), host.size() * sizeof(T));
    return b;
}
template <typename T>
std::vector<T> download(Backend& backend, const T* device, int64_t n) {
    if (backend.device() == Device::Host) return std::vector<T>(device, device + n);  // one pass: no zeroing first
    std::vector<T> host(static_cast<size_t>(n));
    if (n > 0) backend.download(host.data(), device, static_cast<uint64_t>(n) * sizeof(T));
    return host;
}

// The weight types a kind of backend computes with, known before one is made (CPU: every
// type Mome reads; CUDA: F32, F16, BF16).
bool backend_kind_supports_type(mome_backend kind, mome_tensor_type type);

// The CPU backends over a thread pool they do not own (cpu-ref runs one thread and ignores it).
std::unique_ptr<Backend> make_cpu_ref_backend();
std::unique_ptr<Backend> make_cpu_fast_backend(ThreadPool& pool);
// A CUDA backend on one device with its own stream (UNSUPPORTED in a build without CUDA).
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace mome
