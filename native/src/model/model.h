// The ABI's opaque model: an open GGUF file and, for Llama models, their hyper-parameters.
#pragma once

#include <memory>
#include <mutex>

#include "gguf/gguf_file.h"
#include "mome.h"

struct mome_model {
    std::unique_ptr<mome::GgufFile> file;
    bool is_llama = false;
    mome_llama_config config{};
    // Identity of the weights, computed on first use (bank files record it).
    mutable std::once_flag fingerprint_once;
    mutable uint32_t fingerprint = 0;
};
