// Llama hyper-parameters from GGUF metadata (with llama.cpp's defaults), and the check that
// every tensor the forward pass needs is present with the right shape and a usable type.
#pragma once

#include "gguf/gguf_file.h"
#include "mome.h"

namespace mome {

// Throws mome::Error naming the file and the key when a required key is missing, has the
// wrong type, or holds a value no Llama model can have.
mome_llama_config read_llama_config(const GgufFile& file);

// Throws mome::Error naming the file and the tensor that is missing or mis-shaped.
void check_llama_tensors(const GgufFile& file, const mome_llama_config& config);

}  // namespace mome
