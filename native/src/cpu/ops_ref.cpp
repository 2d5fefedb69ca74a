#include <cmath>
#include <vector>

#include "core/half.h"
#include "cpu/exp_like_ggml.h"
#include "cpu/ops.h"
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

void rope_norm_ref(float* x, int64_t n_heads, int64_t head_dim, int32_t pos, const RopeParams& p) {
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    std::vector<float> cos_t(static_cast<size_t>(p.n_rot / 2)), sin_t(static_cast<size_t>(p.n_rot / 2));
    float theta = static_cast<float>(pos);
    for (int64_t i = 0; i < p.n_rot / 2; ++i) {
        const float factor = p.freq_factors ? p.freq_factors[i] : 1.0f;
        const float angle = p.freq_scale * (theta / factor);
        cos_t[static_cast<size_t>(i)] = std::cos(angle);
        sin_t[static_cast<size_t>(i)] = std::sin(angle);
        theta *= theta_scale;
    }
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        for (int64_t i = 0; i < p.n_rot / 2; ++i) {
            const float a = v[2 * i], b = v[2 * i + 1];
            const float c = cos_t[static_cast<size_t>(i)], s = sin_t[static_cast<size_t>(i)];
            v[2 * i] = a * c - b * s;
            v[2 * i + 1] = a * s + b * c;
        }
    }
}

void attention_ref(const float* q, const float* k_cache, const float* v_cache, int64_t n_positions, int64_t n_head,
                   int64_t n_head_kv, int64_t head_dim, float* out) {
    const int64_t group = n_head / n_head_kv;
    const int64_t kv_stride = n_head_kv * head_dim;
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    std::vector<float> w(static_cast<size_t>(n_positions));
    for (int64_t h = 0; h < n_head; ++h) {
        const float* qh = q + h * head_dim;
        const int64_t kvh = h / group;
        float max_score = -INFINITY;
        for (int64_t j = 0; j < n_positions; ++j) {
            const float* k = k_cache + j * kv_stride + kvh * head_dim;
            double dot = 0;
            for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qh[d]) * k[d];
            w[static_cast<size_t>(j)] = static_cast<float>(dot) * scale;
            max_score = std::max(max_score, w[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (float& s : w) {
            s = std::exp(s - max_score);
            sum += s;
        }
        float* oh = out + h * head_dim;
        for (int64_t d = 0; d < head_dim; ++d) {
            double acc = 0;
            for (int64_t j = 0; j < n_positions; ++j) acc += static_cast<double>(w[static_cast<size_t>(j)]) * v_cache[j * kv_stride + kvh * head_dim + d];
            oh[d] = static_cast<float>(acc / sum);
        }
    }
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
