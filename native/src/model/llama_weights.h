// A Llama model's weights as tensor views: on the host, views into the mapped GGUF file (no
// copies of the matrices) plus F32 copies of the small vectors (norms, rope factors), which
// the struct owns; on a device, views of the copies a backend made (backend/backend.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "gguf/gguf_file.h"
#include "mome.h"

namespace mome {

struct LayerWeights {
    Tensor attn_norm, ffn_norm;  // F32 [1 x n_embd]
    Tensor wq, wk, wv, wo, gate, up, down;
};

struct LlamaWeights {
    Tensor token_embd;
    Tensor output;       // token_embd when the output is tied
    Tensor output_norm;  // F32 [1 x n_embd]
    Tensor rope_freqs;   // F32 [1 x n_rot/2]; data null unless the model has rope_freqs.weight
    std::vector<LayerWeights> layers;
    // The F32 vectors the host views point into (moving the struct keeps them valid).
    std::vector<std::unique_ptr<std::vector<float>>> owned;
};

// Expects a file that passed check_llama_tensors.
LlamaWeights load_llama_weights(const GgufFile& file, const mome_llama_config& config);

}  // namespace mome
