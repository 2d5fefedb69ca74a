#include <algorithm>
#include <cmath>
#include <vector>

#include "core/half.h"
#include "cpu/exp_like_ggml.h"
#include "cpu/ops.h"
#include "cpu/sums_like_ggml.h"
#include "quant/quant.h"

namespace mome {

void round_activations_like_weights(mome_tensor_type weight_type, float* x, int64_t n) {
    if (weight_type == MOME_TENSOR_TYPE_F16)
        for (int64_t i = 0; i < n; ++i) x[i] = f16_to_float(float_to_f16(x[i]));
    else if (weight_type == MOME_TENSOR_TYPE_BF16)
        for (int64_t i = 0; i < n; ++i) x[i] = bf16_to_float(float_to_bf16(x[i]));
}

void matmul_ref(const Tensor& W, const float* X, int64_t n_tokens, float* Y, const std::vector<int64_t>& calls) {
    if (is_quantized_type(W.type)) return quant_matmul_ref(W, X, n_tokens, Y, calls);
    for (int64_t t = 0; t < n_tokens; ++t) {
        const float* x = X + t * W.cols;
        for (int64_t r = 0; r < W.rows; ++r) {
            double sum = 0;
            for (int64_t k = 0; k < W.cols; ++k) sum += static_cast<double>(weight_at(W, r, k)) * x[k];
            Y[t * W.rows + r] = static_cast<float>(sum);
        }
    }
}

void rms_norm_ref(const float* x, const float* weight, int64_t d, float eps, float* out) {
    double sum_sq = 0;
    // Squares in float, summed in double, as ggml does: quantized activations downstream
    // round at block steps, so even the last bit of the scale matters.
    for (int64_t i = 0; i < d; ++i) sum_sq += static_cast<double>(x[i] * x[i]);
    const float mean = static_cast<float>(sum_sq / static_cast<double>(d));
    const float scale = 1.0f / std::sqrt(mean + eps);
    for (int64_t i = 0; i < d; ++i) out[i] = x[i] * scale * weight[i];
}

void rope_angles(int32_t pos, const RopeParams& p, float* cos_t, float* sin_t) {
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < p.n_rot / 2; ++i) {
        const float factor = p.freq_factors ? p.freq_factors[i] : 1.0f;
        const float angle = p.freq_scale * (theta / factor);
        cos_t[i] = std::cos(angle);
        sin_t[i] = std::sin(angle);
        theta *= theta_scale;
    }
}

void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, int64_t n_rot, const float* cos_t, const float* sin_t) {
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        for (int64_t i = 0; i < n_rot / 2; ++i) {
            const float a = v[2 * i], b = v[2 * i + 1];
            const float c = cos_t[i], s = sin_t[i];
            // As ggml's binary computes the rotation: one product rounded, the other fused.
            v[2 * i] = std::fma(a, c, -(b * s));
            v[2 * i + 1] = std::fma(a, s, b * c);
        }
    }
}

void rope_norm_ref(float* x, int64_t n_heads, int64_t head_dim, int32_t pos, const RopeParams& p) {
    std::vector<float> cos_t(static_cast<size_t>(p.n_rot / 2)), sin_t(static_cast<size_t>(p.n_rot / 2));
    rope_angles(pos, p, cos_t.data(), sin_t.data());
    rope_rotate(x, n_heads, head_dim, p.n_rot, cos_t.data(), sin_t.data());
}

namespace {

// ggml_vec_dot_f32 of x[i * x_stride] and y[i], i < n, in a vector ggml sees as `length`
// long (zeros after n): cpu/sums_like_ggml.h.
float vec_dot_like_ggml(const float* x, int64_t x_stride, const float* y, int64_t n, int64_t length) {
    const int64_t in_lanes = std::min(n, length - length % 64);
    float lanes[64] = {}, folded[16];
    int64_t i = 0;
    for (; i < in_lanes; ++i) lanes[i % 64] = std::fma(x[i * x_stride], y[i], lanes[i % 64]);
    fold_lanes64(lanes, folded);
    float sum = lanes16_total(folded);
    for (const int64_t fused = n - (n - i) % 8; i < fused; ++i) sum += x[i * x_stride] * y[i];
    for (; i < n; ++i) sum = std::fma(x[i * x_stride], y[i], sum);
    return sum;
}

// tinyBLAS's dot of the same: one 16-lane accumulator.
float gemm_dot_like_ggml(const float* x, int64_t x_stride, const float* y, int64_t n) {
    float lanes[16] = {};
    for (int64_t i = 0; i < n; ++i) lanes[i % 16] = std::fma(x[i * x_stride], y[i], lanes[i % 16]);
    return lanes16_total(lanes);
}

}  // namespace

void attention_head_ref(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                        int64_t n_head_kv, int64_t head_dim, int64_t h, bool one_token_call, float* out) {
    const int64_t kv_stride = n_head_kv * head_dim;
    const int64_t kv_offset = h / (n_head / n_head_kv) * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const float* qh = q + h * head_dim;
    // The scores, then ggml_soft_max_ext: scaled, exp(x - max) by ggml's vector exp, the sum of
    // each 16 in double, every probability times the float of 1 / sum.
    std::vector<float> p(static_cast<size_t>((n_positions + 15) / 16 * 16), 0.0f);
    float max_score = -INFINITY;
    for (int64_t j = 0; j < n_positions; ++j) {
        float& s = p[static_cast<size_t>(j)];
        s = vec_dot_like_ggml(k_cache + j * kv_stride + kv_offset, 1, qh, head_dim, head_dim) * scale;
        max_score = std::max(max_score, s);
    }
    for (int64_t j = 0; j < n_positions; ++j) p[static_cast<size_t>(j)] = exp_like_ggml(p[static_cast<size_t>(j)] - max_score);
    double sum = 0;
    for (size_t c = 0; c < p.size(); c += 16) sum += static_cast<double>(lanes16_total(p.data() + c));
    const float inv = static_cast<float>(1.0 / sum);
    for (float& x : p) x *= inv;
    // The values: ggml's vec_dot for a one-token call, tinyBLAS for longer ones.
    float* oh = out + h * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) {
        const float* v = v_cache + kv_offset + d;
        oh[d] = one_token_call ? vec_dot_like_ggml(v, kv_stride, p.data(), n_positions, kv_view_length(n_positions))
                               : gemm_dot_like_ggml(v, kv_stride, p.data(), n_positions);
    }
}

void attention_ref(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                   int64_t n_head_kv, int64_t head_dim, bool one_token_call, float* out) {
    for (int64_t h = 0; h < n_head; ++h)
        attention_head_ref(q, k_cache, v_cache, n_positions, n_head, n_head_kv, head_dim, h, one_token_call, out);
}

// ggml takes its vector exp for every 16 elements of a row and libm's expf for a row's last
// n_ff % 16; Llama widths are multiples of 16, so every element takes the vector one here.
void swiglu_ref(const float* gate, const float* up, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = silu_like_ggml(gate[i]) * up[i];
}

void embed_ref(const Tensor& embedding, int32_t token, float* out) {
    if (is_quantized_type(embedding.type)) return dequantize_matrix_row(embedding, token, out);
    for (int64_t k = 0; k < embedding.cols; ++k) out[k] = weight_at(embedding, token, k);
}

}  // namespace mome
