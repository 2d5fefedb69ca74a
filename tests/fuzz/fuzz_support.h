// What the libFuzzer harnesses share: the input as a file (the parsers read paths) and the
// tiny model that bank files are made for.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "../native/abi_structs.h"
#include "mome.h"

namespace mome_fuzz {

// One file per harness process, rewritten each iteration.
inline const std::string& input_path(const char* harness) {
    static const std::string path = [&] {
        const char* dir = std::getenv("TMPDIR");
        return std::string(dir && *dir ? dir : "/tmp") + "/mome_fuzz_" + harness + "_" + std::to_string(::getpid());
    }();
    return path;
}

inline const std::string& write_input(const char* harness, const uint8_t* data, size_t size) {
    const std::string& path = input_path(harness);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
        std::perror(path.c_str());
        std::abort();
    }
    return path;
}

// The smallest Llama model the synthetic writer accepts: seeds stay a few KiB, and a bank
// file made for it (tests/fuzz/make_corpus.cpp) matches it by shape and checksum.
inline mome_synthetic_params tiny_model_params() {
    mome_synthetic_params p = sized<mome_synthetic_params>();
    if (mome_synthetic_preset("tiny", &p) != MOME_STATUS_OK) std::abort();
    p.n_vocab = 3 + 256 + 32;
    p.n_ctx_train = 16;
    p.n_embd = 8;
    p.n_layer = 2;
    p.n_head = 2;
    p.n_head_kv = 1;
    p.head_dim = 4;
    p.n_ff = 8;
    p.weight_type = MOME_TENSOR_TYPE_F16;
    p.seed = 7;
    return p;
}

// The bank the corpus holds: small enough that a seed is about 2 KiB.
inline mome_bank_params tiny_bank_params() {
    mome_bank_params p = bank_defaults();
    p.n_layers = 1;
    p.layers[0] = 1;
    p.n_experts = 4;
    p.key_dim = 4;
    p.rank = 1;
    p.top_k = 2;
    p.seed = 5;
    return p;
}

// Aborts (a finding) when a call that must not fail does.
inline void check(mome_status s, const char* what) {
    if (s != MOME_STATUS_OK) {
        std::fprintf(stderr, "%s failed: %s\n", what, mome_last_error());
        std::abort();
    }
}

}  // namespace mome_fuzz
