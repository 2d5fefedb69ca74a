#include "cpu/ops_backward.h"

#include "cpu/ops.h"

#include "cpu/thread_pool.h"

#include "cpu/matmul_variants.h"
#include "quant/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace mome {

void rms_norm_backward(const float* x, const float* weight, int64_t d, float eps, const float* dy, float* dx) {
    double sum_sq = 0, dot = 0;
    for (int64_t i = 0; i < d; ++i) {
        sum_sq += static_cast<double>(x[i]) * x[i];
        dot += static_cast<double>(dy[i]) * weight[i] * x[i];
    }
    const double s = 1.0 / std::sqrt(sum_sq / static_cast<double>(d) + eps);
    for (int64_t i = 0; i < d; ++i)
        dx[i] = static_cast<float>(s * weight[i] * dy[i] - x[i] * s * s * s * dot / static_cast<double>(d));
}

namespace {

// A quantized W is dequantized row by row (the frozen base's input gradient uses the weights
// the forward pass multiplied by): each thread takes a range of tokens and dequantizes every
// row once for all of them.
void quantized_backward_input(const Tensor& W, const float* dY, int64_t n_tokens, float* dX, ThreadPool* pool) {
    const int64_t n_ranges = pool ? std::min<int64_t>(n_tokens, pool->size()) : 1;
    auto range = [&](int64_t part) {
        const int64_t t0 = n_tokens * part / n_ranges, t1 = n_tokens * (part + 1) / n_ranges;
        std::vector<float> row(static_cast<size_t>(W.cols));
        const Tensor row_f32{reinterpret_cast<const uint8_t*>(row.data()), MOME_TENSOR_TYPE_F32, 1, W.cols};
        const AxpyRowFn axpy = axpy_row_best();
        for (int64_t r = 0; r < W.rows; ++r) {
            bool dequantized = false;
            for (int64_t t = t0; t < t1; ++t) {
                const float g = dY[t * W.rows + r];
                if (g == 0) continue;
                if (!dequantized) dequantize_matrix_row(W, r, row.data());
                dequantized = true;
                axpy(row_f32, 0, g, dX + t * W.cols);
            }
        }
    };
    if (n_ranges > 1) pool->run(n_ranges, range);
    else range(0);
}

}  // namespace

void matmul_backward_input_ref(const Tensor& W, const float* dY, int64_t n_tokens, float* dX) {
    if (is_quantized_type(W.type)) return quantized_backward_input(W, dY, n_tokens, dX, nullptr);
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t c = 0; c < W.cols; ++c) {
            float s = dX[t * W.cols + c];
            for (int64_t r = 0; r < W.rows; ++r) s += dY[t * W.rows + r] * weight_at(W, r, c);
            dX[t * W.cols + c] = s;
        }
}

void matmul_backward_input(const Tensor& W, const float* dY, int64_t n_tokens, float* dX, ThreadPool* pool) {
    if (is_quantized_type(W.type)) return quantized_backward_input(W, dY, n_tokens, dX, pool);
    // Blocks of up to 64 tokens x 64 columns of dX, each with its accumulators in registers
    // while W's rows stream by, a cached slice of rows at a time for all the block's tokens
    // (matmul_kernels.h); blocks spread over the pool's threads.
    constexpr int64_t kTokens = 64, kColumns = 64;
    const BackwardInputFn block = backward_input_block_best();
    const int64_t token_blocks = (n_tokens + kTokens - 1) / kTokens, column_blocks = (W.cols + kColumns - 1) / kColumns;
    auto run = [&](int64_t i) {
        const int64_t t0 = (i / column_blocks) * kTokens, c0 = (i % column_blocks) * kColumns;
        block(W, dY, dX, t0, std::min(n_tokens, t0 + kTokens), c0, std::min(W.cols, c0 + kColumns));
    };
    const int64_t n_blocks = token_blocks * column_blocks;
    if (pool && n_blocks > 1) pool->run(n_blocks, run);
    else
        for (int64_t i = 0; i < n_blocks; ++i) run(i);
}

void swiglu_backward(const float* gate, const float* up, const float* dout, int64_t n, float* dgate, float* dup) {
    for (int64_t i = 0; i < n; ++i) {
        const float sig = 1.0f / (1.0f + std::exp(-gate[i]));
        const float silu = gate[i] * sig;
        dgate[i] = dout[i] * up[i] * sig * (1.0f + gate[i] * (1.0f - sig));
        dup[i] = dout[i] * silu;
    }
}

void rope_backward_rotate(float* dx, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t, const float* sin_t) {
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = dx + h * head_dim;
        for (int64_t i = 0; i < n_rot / 2; ++i) {
            const float a = v[2 * i], b = v[2 * i + 1];
            const float c = cos_t[i], s = sin_t[i];
            v[2 * i] = a * c + b * s;  // R(-angle)
            v[2 * i + 1] = -a * s + b * c;
        }
    }
}

void rope_norm_backward(float* dx, int64_t n_heads, int64_t head_dim, int32_t pos, const RopeParams& p) {
    std::vector<float> cos_t(static_cast<size_t>(p.n_rot / 2)), sin_t(static_cast<size_t>(p.n_rot / 2));
    rope_angles(pos, p, cos_t.data(), sin_t.data());
    rope_backward_rotate(dx, n_heads, head_dim, p.n_rot, cos_t.data(), sin_t.data());
}

void attention_backward(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                        int64_t n_head_kv, int64_t head_dim, const float* dout, float* dq, float* dk, float* dv) {
    attention_backward_heads(q, k_cache, v_cache, n_positions, n_head, n_head_kv, head_dim, dout, dq, dk, dv, 0, n_head_kv);
}

void attention_backward_heads(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                              int64_t n_head_kv, int64_t head_dim, const float* dout, float* dq, float* dk, float* dv, int64_t kv_begin,
                              int64_t kv_end) {
    const int64_t group = n_head / n_head_kv, stride = n_head_kv * head_dim;
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
    thread_local std::vector<double> p, dp;  // kept: this runs once per token
    p.resize(static_cast<size_t>(n_positions)), dp.resize(static_cast<size_t>(n_positions));
    for (int64_t h = kv_begin * group; h < kv_end * group; ++h) {
        const float* qh = q + h * head_dim;
        const float* go = dout + h * head_dim;
        const int64_t kvh = h / group;
        double max_s = -INFINITY;
        for (int64_t j = 0; j < n_positions; ++j) {
            const double s = dot_double(qh, k_cache + j * stride + kvh * head_dim, head_dim);
            p[static_cast<size_t>(j)] = s * scale;
            max_s = std::max(max_s, s * scale);
        }
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - max_s));
        for (double& x : p) x /= sum;
        double p_dot_dp = 0;
        for (int64_t j = 0; j < n_positions; ++j) {
            const float* v = v_cache + j * stride + kvh * head_dim;
            const double d = dot_double(go, v, head_dim);
            float* dvj = dv + j * stride + kvh * head_dim;
            const double pj = p[static_cast<size_t>(j)];
            for (int64_t i = 0; i < head_dim; ++i) dvj[i] += static_cast<float>(pj * go[i]);
            dp[static_cast<size_t>(j)] = d;
            p_dot_dp += p[static_cast<size_t>(j)] * d;
        }
        float* dqh = dq + h * head_dim;
        std::fill(dqh, dqh + head_dim, 0.0f);
        for (int64_t j = 0; j < n_positions; ++j) {
            const double ds = p[static_cast<size_t>(j)] * (dp[static_cast<size_t>(j)] - p_dot_dp) * scale;
            const float* k = k_cache + j * stride + kvh * head_dim;
            float* dkj = dk + j * stride + kvh * head_dim;
            for (int64_t i = 0; i < head_dim; ++i) {
                dqh[i] += static_cast<float>(ds * k[i]);
                dkj[i] += static_cast<float>(ds * qh[i]);
            }
        }
    }
}

double cross_entropy_backward(const float* logits, int64_t n_vocab, int32_t target, float* dlogits) {
    double max_l = -INFINITY;
    for (int64_t i = 0; i < n_vocab; ++i) max_l = std::max(max_l, static_cast<double>(logits[i]));
    double sum = 0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(logits[i] - max_l);
    for (int64_t i = 0; i < n_vocab; ++i) dlogits[i] = static_cast<float>(std::exp(logits[i] - max_l) / sum);
    dlogits[target] -= 1.0f;
    return -(logits[target] - max_l - std::log(sum));
}

void lora_backward(const LoraTables& t, const LoraBatch& b, const float* dout, float* dA, float* dB, float* du) {
    const int64_t d = t.dim, r = t.rank;
    const auto* A = reinterpret_cast<const float*>(t.a);
    const auto* Bt = reinterpret_cast<const float*>(t.b);
    for (int64_t s = 0; s < b.n_segments; ++s)
        for (int64_t tok = b.segment_offsets[s]; tok < b.segment_offsets[s + 1]; ++tok) {
            const float* u = b.u + tok * d;
            const float* g = dout + tok * d;
            for (int j = 0; j < b.top_k; ++j) {
                const int64_t e = b.indices[s * b.top_k + j];
                const double w = static_cast<double>(b.weights[s * b.top_k + j]) * b.scale;
                for (int64_t rho = 0; rho < r; ++rho) {
                    const float* a_row = A + (e * r + rho) * d;
                    const float* bt_row = Bt + (e * r + rho) * d;
                    double z = 0, dz = 0;
                    for (int64_t i = 0; i < d; ++i) {
                        z += static_cast<double>(a_row[i]) * u[i];
                        dz += static_cast<double>(bt_row[i]) * g[i];
                    }
                    dz *= w;
                    float* dbt_row = dB + (e * r + rho) * d;
                    float* da_row = dA + (e * r + rho) * d;
                    for (int64_t i = 0; i < d; ++i) {
                        dbt_row[i] += static_cast<float>(w * z * g[i]);
                        da_row[i] += static_cast<float>(dz * u[i]);
                        if (du) du[tok * d + i] += static_cast<float>(dz * a_row[i]);
                    }
                }
            }
        }
}

void matmul_backward_weight(const float* dY, const float* X, int64_t n_tokens, int64_t rows, int64_t cols, float* dW) {
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < cols; ++k) {
            double sum = 0;
            for (int64_t t = 0; t < n_tokens; ++t) sum += static_cast<double>(dY[t * rows + r]) * X[t * cols + k];
            dW[r * cols + k] += static_cast<float>(sum);
        }
}

void rms_norm_backward_weight(const float* x, int64_t d, float eps, const float* dy, float* dweight) {
    double sum_sq = 0;
    for (int64_t i = 0; i < d; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
    const double s = 1.0 / std::sqrt(sum_sq / static_cast<double>(d) + eps);
    for (int64_t i = 0; i < d; ++i) dweight[i] += static_cast<float>(dy[i] * x[i] * s);
}

}  // namespace mome
