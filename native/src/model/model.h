// The ABI's opaque model: an open GGUF file and, for Llama models, their hyper-parameters.
#pragma once

#include <memory>

#include "gguf/gguf_file.h"
#include "mome.h"

struct mome_model {
    std::unique_ptr<mome::GgufFile> file;
    bool is_llama = false;
    mome_llama_config config{};
};
