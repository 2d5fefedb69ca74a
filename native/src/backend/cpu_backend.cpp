// The CPU backends. cpu-ref runs every op as the plain loops of cpu/ops.h and
// cpu/ops_backward.h, on the calling thread; cpu-fast is cpu-ref with the SIMD matmul and
// grouped-LoRA kernels and with rows and tokens spread over a thread pool. Device memory is
// host memory, so copies are memcpy and a host tensor is its own device tensor.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "backend/block_cache.h"
#include "core/error.h"
#include "cpu/ops_backward.h"
#include "cpu/thread_pool.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mome {

namespace {

// d[i] = exp(l[i] - m) for l[i] <= m (a softmax's numerators): AVX-512 when the CPU has it
// (Cephes' expf polynomial on the reduced argument and a 2^k by vscalef, within 2 ulp of
// std::exp, 0 below its range), std::exp otherwise and for the last few.
#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12 warns inside its own avx512fintrin.h (as for matmul_avx512.cpp)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) void exp_shifted_avx512(const float* l, float m, int64_t n, float* d) {
    const __m512 vm = _mm512_set1_ps(m), lo = _mm512_set1_ps(-104.0f), log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 c1 = _mm512_set1_ps(0.693359375f), c2 = _mm512_set1_ps(-2.12194440e-4f), one = _mm512_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_max_ps(_mm512_sub_ps(_mm512_loadu_ps(l + i), vm), lo);
        const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        x = _mm512_fnmadd_ps(k, c1, x);
        x = _mm512_fnmadd_ps(k, c2, x);
        __m512 y = _mm512_set1_ps(1.9875691500e-4f);
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
        y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
        y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, one));
        _mm512_storeu_ps(d + i, _mm512_scalef_ps(y, k));
    }
    for (; i < n; ++i) d[i] = std::exp(l[i] - m);
}

// row_max's fold in 16 lanes: vmaxps(x, lane) is x > lane ? x : lane, std::max(lane, x).
__attribute__((target("avx512f"))) float row_max_avx512(const float* x, int64_t n) {
    __m512 lanes = _mm512_set1_ps(x[0]);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) lanes = _mm512_max_ps(_mm512_loadu_ps(x + i), lanes);
    alignas(64) float lane[16];
    _mm512_store_ps(lane, lanes);
    float m = x[0];
    for (const float v : lane) m = std::max(m, v);
    for (; i < n; ++i) m = std::max(m, x[i]);
    return m;
}

// The first i with x[i] == m, or n.
__attribute__((target("avx512f"))) int64_t find_equal_avx512(const float* x, int64_t n, float m) {
    const __m512 vm = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        if (const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), vm, _CMP_EQ_OQ)) return i + __builtin_ctz(hit);
    for (; i < n; ++i)
        if (x[i] == m) return i;
    return n;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

bool cpu_has_avx512() {
#if defined(__x86_64__)
    static const bool avx512 = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
    }();
    return avx512;
#else
    return false;
#endif
}

// max(x[0], ..., x[n-1]) folded as std::max(m, x[i]) from m = x[0]: a NaN at x[0] stays, any
// other NaN is passed over. The fold's order may differ (lanes) but not its value, except
// which of +0 and -0 it keeps, which compare equal.
float row_max(const float* x, int64_t n) {
#if defined(__x86_64__)
    if (cpu_has_avx512()) return row_max_avx512(x, n);
#endif
    float m = x[0];
    for (int64_t i = 1; i < n; ++i) m = std::max(m, x[i]);
    return m;
}

int64_t find_equal(const float* x, int64_t n, float m) {
#if defined(__x86_64__)
    if (cpu_has_avx512()) return find_equal_avx512(x, n, m);
#endif
    int64_t i = 0;
    while (i < n && !(x[i] == m)) ++i;
    return i;
}

void exp_shifted(const float* l, float m, int64_t n, float* d) {
#if defined(__x86_64__)
    if (cpu_has_avx512()) return exp_shifted_avx512(l, m, n, d);
#endif
    for (int64_t i = 0; i < n; ++i) d[i] = std::exp(l[i] - m);
}

class CpuRefBackend : public Backend {
public:
    const char* name() const override { return "cpu-ref"; }
    Device device() const override { return Device::Host; }
    bool supports_type(mome_tensor_type) const override { return true; }  // every type Mome reads
    bool supports_op(Op op, mome_tensor_type type) const override {
        if (op == Op::LoraBackward) return type == MOME_TENSOR_TYPE_F32;
        if (op == Op::LoraApply) return !is_quantized_type(type);
        return true;
    }

    void* allocate(uint64_t bytes) override { return blocks_.take(bytes); }
    void free(void* ptr) override { blocks_.give(ptr); }
    void* allocate_kept(uint64_t bytes) override {
        kept_.emplace_back(static_cast<size_t>(bytes));
        return kept_.back().data();
    }
    void upload(void* dst, const void* src, uint64_t bytes) override { std::memcpy(dst, src, bytes); }
    void download(void* dst, const void* src, uint64_t bytes) override { std::memcpy(dst, src, bytes); }
    void copy(void* dst, const void* src, uint64_t bytes) override { std::memmove(dst, src, bytes); }
    void zero(void* ptr, uint64_t bytes) override { std::memset(ptr, 0, bytes); }
    Tensor to_device(const Tensor& host) override { return host; }

    void embed(const Tensor& table, const int32_t* tokens, int64_t n, float* x) override {
        for (int64_t t = 0; t < n; ++t) embed_ref(table, tokens[t], x + t * table.cols);
    }
    void add(float* x, const float* y, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) x[i] += y[i];
    }
    void scale(float* x, float s, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) x[i] *= s;
    }
    void gather_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out) override {
        for (int64_t i = 0; i < n_rows; ++i) std::memcpy(out + i * d, x + static_cast<int64_t>(rows[i]) * d, d * sizeof(float));
    }
    void scatter_rows(const float* x, const int32_t* rows, int64_t n_rows, int64_t d, float* out) override {
        for (int64_t i = 0; i < n_rows; ++i) std::memcpy(out + static_cast<int64_t>(rows[i]) * d, x + i * d, d * sizeof(float));
    }
    void argmax_rows(const float* x, int64_t n, int64_t d, int32_t* out) override {
        for (int64_t t = 0; t < n; ++t) {
            const float* row = x + t * d;
            int64_t best = 0;
            for (int64_t i = 1; i < d; ++i)
                if (row[i] > row[best]) best = i;
            out[t] = static_cast<int32_t>(best);
        }
    }
    void rms_norm(const float* x, const Tensor& weight, int64_t rows, float eps, float* out) override {
        const int64_t d = weight.cols;
        for (int64_t r = 0; r < rows; ++r) rms_norm_ref(x + r * d, weight.f32(), d, eps, out + r * d);
    }
    void rope(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) override {
        for (int64_t r = 0; r < rows; ++r) rope_norm_ref(x + r * n_heads * head_dim, n_heads, head_dim, pos[r], p);
    }
    void matmul(const Tensor& W, const float* X, int64_t n, float* Y) override { matmul_calls(W, X, n, {}, Y); }
    void matmul_calls(const Tensor& W, const float* X, int64_t n, const std::vector<int64_t>& calls, float* Y) override {
        std::vector<float> rounded;
        matmul_ref(W, rounded_for(W, X, n, rounded), n, Y, calls);
    }
    void store_kv(const float* k, const float* v, const int32_t* seq_ids, const int32_t* positions, int64_t n, int64_t kv_dim,
                  int64_t v_dim, int64_t seq_positions, float* k_cache, float* v_cache) override {
        for (int64_t t = 0; t < n; ++t) {
            const int64_t slot = static_cast<int64_t>(seq_ids ? seq_ids[t] : 0) * seq_positions + positions[t];
            std::memcpy(k_cache + slot * kv_dim, k + t * kv_dim, kv_dim * sizeof(float));
            std::memcpy(v_cache + slot * v_dim, v + t * v_dim, v_dim * sizeof(float));
        }
    }
    void attention(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, const int32_t* visible,
                   int64_t n, const AttentionShape& a, float* out) override {
        attention_calls(q, k_cache, v_cache, seq_ids, visible, n, a, {}, out);
    }
    void attention_calls(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, const int32_t* visible,
                         int64_t n, const AttentionShape& a, const std::vector<int64_t>& calls, float* out) override {
        const std::vector<bool> single = single_token_calls(n, calls);
        const int64_t q_dim = a.n_head * a.head_dim, kv_dim = a.n_head_kv * a.head_dim;
        for (int64_t t = 0; t < n; ++t) {
            const int64_t base = static_cast<int64_t>(seq_ids ? seq_ids[t] : 0) * a.seq_positions;
            attention_ref(q + t * q_dim, k_cache + base * kv_dim, v_cache + base * kv_dim, visible[t], a.n_head, a.n_head_kv, a.head_dim,
                          single[static_cast<size_t>(t)], out + t * q_dim);
        }
    }
    void swiglu(const float* gate, const float* up, int64_t n, float* out) override { swiglu_ref(gate, up, n, out); }
    void lora_apply(const LoraTables& tables, const LoraBatch& batch, float* out) override { lora_apply_ref(tables, batch, out); }

    void rms_norm_backward(const float* x, const Tensor& weight, const float* dy, int64_t rows, float eps, float* dx) override {
        const int64_t d = weight.cols;
        for (int64_t r = 0; r < rows; ++r) mome::rms_norm_backward(x + r * d, weight.f32(), d, eps, dy + r * d, dx + r * d);
    }
    void matmul_backward_input(const Tensor& W, const float* dY, int64_t n, float* dX) override {
        mome::matmul_backward_input_ref(W, dY, n, dX);
    }
    void rope_backward(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) override {
        for (int64_t r = 0; r < rows; ++r) rope_norm_backward(dx + r * n_heads * head_dim, n_heads, head_dim, pos[r], p);
    }
    void attention_backward(const float* q, const float* k_cache, const float* v_cache, const int32_t* visible, int64_t n,
                            const AttentionShape& a, const float* dout, float* dq, float* dk, float* dv) override {
        const int64_t q_dim = a.n_head * a.head_dim;
        for (int64_t t = 0; t < n; ++t)
            mome::attention_backward(q + t * q_dim, k_cache, v_cache, visible[t], a.n_head, a.n_head_kv, a.head_dim, dout + t * q_dim,
                                     dq + t * q_dim, dk, dv);
    }
    void swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup) override {
        mome::swiglu_backward(gate, up, dout, n, dgate, dup);
    }
    void cross_entropy_backward(const float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float* dlogits,
                                float* loss) override {
        for (int64_t t = 0; t < n; ++t)
            loss[t] = static_cast<float>(mome::cross_entropy_backward(logits + t * n_vocab, n_vocab, targets[t], dlogits + t * n_vocab));
    }
    void lora_backward(const LoraTables& tables, const LoraBatch& batch, const float* dout, float* dA, float* dB) override {
        require_f32(tables);
        mome::lora_backward(tables, batch, dout, dA, dB, nullptr);
    }
    void matmul_backward_weight(const float* dY, const float* X, int64_t n, int64_t rows, int64_t cols, float* dW) override {
        mome::matmul_backward_weight(dY, X, n, rows, cols, dW);
    }
    void rms_norm_backward_weight(const float* x, const float* dy, int64_t rows, int64_t d, float eps, float* dweight) override {
        for (int64_t r = 0; r < rows; ++r) mome::rms_norm_backward_weight(x + r * d, d, eps, dy + r * d, dweight);
    }
    void embed_backward(const float* dx, const int32_t* tokens, int64_t n, int64_t d, float* dtable) override {
        for (int64_t t = 0; t < n; ++t) add(dtable + static_cast<int64_t>(tokens[t]) * d, dx + t * d, d);
    }

protected:
    // X rounded as ggml rounds activations for W's type (into `scratch`), or X itself when
    // the type needs no rounding.
    static const float* rounded_for(const Tensor& W, const float* X, int64_t n, std::vector<float>& scratch) {
        if (W.type != MOME_TENSOR_TYPE_F16 && W.type != MOME_TENSOR_TYPE_BF16) return X;
        scratch.assign(X, X + n * W.cols);
        round_activations_like_weights(W.type, scratch.data(), n * W.cols);
        return scratch.data();
    }
    // Whether each of the n tokens came in a call of its own (calls empty: all in one).
    static std::vector<bool> single_token_calls(int64_t n, const std::vector<int64_t>& calls) {
        if (calls.empty()) return std::vector<bool>(static_cast<size_t>(n), n == 1);
        std::vector<bool> single;
        for (const int64_t len : calls) single.insert(single.end(), static_cast<size_t>(std::max<int64_t>(len, 0)), len == 1);
        require_arg(static_cast<int64_t>(single.size()) == n, "the calls of a batch add up to its tokens");
        return single;
    }
    static void require_f32(const LoraTables& tables) {
        if (tables.type != MOME_TENSOR_TYPE_F32) fail(MOME_STATUS_UNSUPPORTED, "the LoRA backward takes F32 expert tables");
    }

private:
    std::vector<std::vector<uint8_t>> kept_;
    BlockCache blocks_;  // buffers, reused from step to step
};

class CpuFastBackend final : public CpuRefBackend {
public:
    explicit CpuFastBackend(ThreadPool& pool) : pool_(pool) {}
    const char* name() const override { return "cpu-fast"; }

    void rope(float* x, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) override {
        rope_fast(x, rows, n_heads, head_dim, pos, p, pool_);
    }
    void rope_backward(float* dx, int64_t rows, int64_t n_heads, int64_t head_dim, const int32_t* pos, const RopeParams& p) override {
        rope_backward_fast(dx, rows, n_heads, head_dim, pos, p, pool_);
    }
    // The reference's sums, each KV head (its query heads, its slices of dk and dv) on a thread.
    void attention_backward(const float* q, const float* k_cache, const float* v_cache, const int32_t* visible, int64_t n,
                            const AttentionShape& a, const float* dout, float* dq, float* dk, float* dv) override {
        const int64_t q_dim = a.n_head * a.head_dim;
        pool_.run(a.n_head_kv, [&](int64_t kvh) {
            for (int64_t t = 0; t < n; ++t)
                attention_backward_heads(q + t * q_dim, k_cache, v_cache, visible[t], a.n_head, a.n_head_kv, a.head_dim, dout + t * q_dim,
                                         dq + t * q_dim, dk, dv, kvh, kvh + 1);
        });
    }
    void matmul(const Tensor& W, const float* X, int64_t n, float* Y) override { matmul_calls(W, X, n, {}, Y); }
    void matmul_calls(const Tensor& W, const float* X, int64_t n, const std::vector<int64_t>& calls, float* Y) override {
        thread_local std::vector<float> rounded;  // kept: no allocation per decode step
        const float* x = X;
        if (W.type == MOME_TENSOR_TYPE_F16 || W.type == MOME_TENSOR_TYPE_BF16) {
            if (rounded.size() < static_cast<size_t>(n * W.cols)) rounded.resize(static_cast<size_t>(n * W.cols));
            round_activations_fast(W.type, X, rounded.data(), n * W.cols, pool_);
            x = rounded.data();
        }
        matmul_fast(W, x, n, Y, pool_, calls);
    }
    void attention(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, const int32_t* visible,
                   int64_t n, const AttentionShape& a, float* out) override {
        attention_calls(q, k_cache, v_cache, seq_ids, visible, n, a, {}, out);
    }
    void attention_calls(const float* q, const float* k_cache, const float* v_cache, const int32_t* seq_ids, const int32_t* visible,
                         int64_t n, const AttentionShape& a, const std::vector<int64_t>& calls, float* out) override {
        // One chunk per (token, head): a decode step's heads spread over the threads too.
        const std::vector<bool> single = single_token_calls(n, calls);
        const int64_t q_dim = a.n_head * a.head_dim, kv_dim = a.n_head_kv * a.head_dim;
        pool_.run(n * a.n_head, [&](int64_t chunk) {
            const int64_t t = chunk / a.n_head, h = chunk % a.n_head;
            const int64_t base = static_cast<int64_t>(seq_ids ? seq_ids[t] : 0) * a.seq_positions;
            attention_head_fast(q + t * q_dim, k_cache + base * kv_dim, v_cache + base * kv_dim, visible[t], a.n_head, a.n_head_kv,
                                a.head_dim, h, single[static_cast<size_t>(t)], out + t * q_dim);
        });
    }
    void swiglu(const float* gate, const float* up, int64_t n, float* out) override { swiglu_fast(gate, up, n, out, pool_); }
    void lora_apply(const LoraTables& tables, const LoraBatch& batch, float* out) override { mome::lora_apply(tables, batch, out, pool_); }
    void matmul_backward_input(const Tensor& W, const float* dY, int64_t n, float* dX) override {
        mome::matmul_backward_input(W, dY, n, dX, &pool_);
    }
    void cross_entropy_backward(const float* logits, const int32_t* targets, int64_t n, int64_t n_vocab, float* dlogits,
                                float* loss) override {
        // Rows over the threads; each exponential computed once, in float (SIMD), and summed in double.
        pool_.run(n, [&](int64_t t) {
            const float* l = logits + t * n_vocab;
            float* d = dlogits + t * n_vocab;
            const float m = row_max(l, n_vocab);
            exp_shifted(l, m, n_vocab, d);
            double s[4] = {0, 0, 0, 0};  // independent partial sums: no chain of additions
            int64_t i = 0;
            for (; i + 4 <= n_vocab; i += 4)
                for (int j = 0; j < 4; ++j) s[j] += d[i + j];
            for (; i < n_vocab; ++i) s[0] += d[i];
            const double sum = (s[0] + s[1]) + (s[2] + s[3]);
            const float inv = static_cast<float>(1.0 / sum);
            for (int64_t i = 0; i < n_vocab; ++i) d[i] *= inv;
            d[targets[t]] -= 1.0f;
            loss[t] = static_cast<float>(-(static_cast<double>(l[targets[t]]) - m - std::log(sum)));
        });
    }
    void lora_backward(const LoraTables& tables, const LoraBatch& batch, const float* dout, float* dA, float* dB) override {
        require_f32(tables);
        lora_backward_fast(tables, batch, dout, dA, dB, pool_);
    }
    // The first index of each row's largest value (as cpu-ref's), the maximum found first.
    void argmax_rows(const float* x, int64_t n, int64_t d, int32_t* out) override {
        pool_.run(n, [&](int64_t t) {
            const float* row = x + t * d;
            const int64_t best = find_equal(row, d, row_max(row, d));
            out[t] = static_cast<int32_t>(best < d ? best : 0);
        });
    }

    // Each chunk owns a block of dW's rows and sweeps the tokens once for it (rows of X
    // streamed, the row of dW kept in cache).
    void matmul_backward_weight(const float* dY, const float* X, int64_t n, int64_t rows, int64_t cols, float* dW) override {
        constexpr int64_t kRowsPerChunk = 8;
        pool_.run((rows + kRowsPerChunk - 1) / kRowsPerChunk, [&](int64_t chunk) {
            const int64_t r0 = chunk * kRowsPerChunk, r1 = std::min(rows, r0 + kRowsPerChunk);
            for (int64_t t = 0; t < n; ++t) {
                const float* x = X + t * cols;
                for (int64_t r = r0; r < r1; ++r) {
                    const float g = dY[t * rows + r];
                    float* w = dW + r * cols;
                    for (int64_t k = 0; k < cols; ++k) w[k] += g * x[k];
                }
            }
        });
    }

private:
    ThreadPool& pool_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_ref_backend() { return std::make_unique<CpuRefBackend>(); }
std::unique_ptr<Backend> make_cpu_fast_backend(ThreadPool& pool) { return std::make_unique<CpuFastBackend>(pool); }

}  // namespace mome
