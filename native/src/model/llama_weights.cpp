#include "model/llama_weights.h"

#include <cstring>
#include <string>

#include "core/half.h"

namespace mome {

namespace {

Matrix matrix(const GgufFile& f, const std::string& name) {
    const GgufTensor* t = f.find_tensor(name);
    Matrix m;
    m.data = f.tensor_data(*t);
    m.type = static_cast<mome_tensor_type>(t->type);
    m.cols = t->ne[0];
    m.rows = t->ne[1];
    return m;
}

std::vector<float> vector_f32(const GgufFile& f, const std::string& name) {
    const Matrix m = matrix(f, name);
    std::vector<float> v(static_cast<size_t>(m.cols));
    for (int64_t i = 0; i < m.cols; ++i) v[static_cast<size_t>(i)] = weight_at(m, 0, i);
    return v;
}

}  // namespace

float weight_at(const Matrix& m, int64_t row, int64_t col) {
    const int64_t i = row * m.cols + col;
    if (m.type == MOME_TENSOR_TYPE_F32) {
        float x;
        std::memcpy(&x, m.data + 4 * i, 4);
        return x;
    }
    uint16_t h;
    std::memcpy(&h, m.data + 2 * i, 2);
    return m.type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
}

LlamaWeights load_llama_weights(const GgufFile& f, const mome_llama_config& c) {
    LlamaWeights w;
    w.token_embd = matrix(f, "token_embd.weight");
    w.output = c.tied_output ? w.token_embd : matrix(f, "output.weight");
    w.output_norm = vector_f32(f, "output_norm.weight");
    if (c.has_rope_freqs) w.rope_freqs = vector_f32(f, "rope_freqs.weight");
    w.layers.resize(static_cast<size_t>(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights& L = w.layers[static_cast<size_t>(l)];
        L.attn_norm = vector_f32(f, p + "attn_norm.weight");
        L.ffn_norm = vector_f32(f, p + "ffn_norm.weight");
        L.wq = matrix(f, p + "attn_q.weight");
        L.wk = matrix(f, p + "attn_k.weight");
        L.wv = matrix(f, p + "attn_v.weight");
        L.wo = matrix(f, p + "attn_output.weight");
        L.gate = matrix(f, p + "ffn_gate.weight");
        L.up = matrix(f, p + "ffn_up.weight");
        L.down = matrix(f, p + "ffn_down.weight");
    }
    return w;
}

}  // namespace mome
