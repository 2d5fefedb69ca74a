// Synthetic Llama models: presets, a generated SentencePiece-style vocabulary with byte
// fallback, and seeded random weights, written as GGUF.
#pragma once

#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/llama_weights.h"
#include "mome.h"

namespace mome {

// Throws NOT_FOUND naming the presets that exist.
mome_synthetic_params synthetic_preset(const std::string& name);

// Throws INVALID_ARGUMENT naming the first parameter out of its domain.
void check_synthetic_params(const mome_synthetic_params& p);

// The vocabulary a synthetic model carries: <unk>, <s>, </s>, the 256 byte tokens, then
// pieces ("▁" marks a word start) such that every multi-character piece can be built by
// merging two shorter ones, as SentencePiece BPE merging needs.
struct SyntheticVocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
};
SyntheticVocab synthetic_vocab(int64_t n_vocab);

void write_synthetic_model(const mome_synthetic_params& p, const std::string& path);

// The hyper-parameters a model written from `p` reads back as (checked against the file in
// tests/native/synthetic_test.cpp), for models made without a file.
mome_llama_config synthetic_config(const mome_synthetic_params& p);

// Llama 3.1 rope frequency factors (n_rot / 2 of them), as Meta's code and llama.cpp compute them.
std::vector<float> llama3_rope_factors(const mome_synthetic_params& p, int64_t n_rot);

// The weights of a model from `p` generated on a CUDA backend's device from p.seed (no file,
// no host copy; not the file's values): uniform values with standard deviation p.init_std,
// norms of ones. `rope_factors`: the Llama 3 factors when the model has them. In
// cuda/synthetic_weights.cu (UNSUPPORTED without CUDA).
LlamaWeights cuda_synthetic_weights(Backend& cuda, const mome_synthetic_params& p, const mome_llama_config& c,
                                    const std::vector<float>& rope_factors);

}  // namespace mome
