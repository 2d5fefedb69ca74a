#include "model/llama_weights.h"

#include <cstring>
#include <memory>
#include <string>


namespace mome {

namespace {

Tensor matrix(const GgufFile& f, const std::string& name) {
    const GgufTensor* t = f.find_tensor(name);
    Tensor m;
    m.data = f.tensor_data(*t);
    m.type = static_cast<mome_tensor_type>(t->type);
    m.cols = t->ne[0];
    m.rows = t->ne[1];
    return m;
}

// A vector as an F32 [1 x n] tensor over a copy `w` owns (norm weights may be stored F16).
Tensor vector_f32(const GgufFile& f, const std::string& name, LlamaWeights& w) {
    const Tensor m = matrix(f, name);
    auto v = std::make_unique<std::vector<float>>(static_cast<size_t>(m.cols));
    for (int64_t i = 0; i < m.cols; ++i) (*v)[static_cast<size_t>(i)] = weight_at(m, 0, i);
    Tensor t{reinterpret_cast<const uint8_t*>(v->data()), MOME_TENSOR_TYPE_F32, 1, m.cols};
    w.owned.push_back(std::move(v));
    return t;
}

}  // namespace

LlamaWeights load_llama_weights(const GgufFile& f, const mome_llama_config& c) {
    LlamaWeights w;
    w.token_embd = matrix(f, "token_embd.weight");
    w.output = c.tied_output ? w.token_embd : matrix(f, "output.weight");
    w.output_norm = vector_f32(f, "output_norm.weight", w);
    if (c.has_rope_freqs) w.rope_freqs = vector_f32(f, "rope_freqs.weight", w);
    w.layers.resize(static_cast<size_t>(c.n_layer));
    for (int64_t l = 0; l < c.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        LayerWeights& L = w.layers[static_cast<size_t>(l)];
        L.attn_norm = vector_f32(f, p + "attn_norm.weight", w);
        L.ffn_norm = vector_f32(f, p + "ffn_norm.weight", w);
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
