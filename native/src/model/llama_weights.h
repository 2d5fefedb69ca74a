// Views of a Llama model's weights inside the mapped GGUF file (no copies of the
// matrices), plus F32 copies of the small vectors (norms, rope factors).
#pragma once

#include <cstdint>
#include <vector>

#include "gguf/gguf_file.h"
#include "mome.h"

namespace mome {

// A row-major [rows x cols] weight: row r holds the `cols` inputs of output r (GGUF's
// ne[0] = cols, ne[1] = rows).
struct Matrix {
    const uint8_t* data = nullptr;
    mome_tensor_type type = MOME_TENSOR_TYPE_F32;
    int64_t rows = 0;
    int64_t cols = 0;
};

struct LayerWeights {
    std::vector<float> attn_norm, ffn_norm;
    Matrix wq, wk, wv, wo, gate, up, down;
};

struct LlamaWeights {
    Matrix token_embd;
    Matrix output;  // token_embd when the output is tied
    std::vector<float> output_norm;
    std::vector<float> rope_freqs;  // empty unless the file has rope_freqs.weight
    std::vector<LayerWeights> layers;
};

// Expects a file that passed check_llama_tensors.
LlamaWeights load_llama_weights(const GgufFile& file, const mome_llama_config& config);

// Element i of a row as F32.
float weight_at(const Matrix& m, int64_t row, int64_t col);

}  // namespace mome
