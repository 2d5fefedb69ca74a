// The ABI's opaque memory bank: per memory layer, the router's query projection W_q, the
// expert keys, and the experts' A and B tables — owned in memory (a new bank) or views into
// a memory-mapped bank file (a loaded one).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "gguf/mapped_file.h"
#include "model/model.h"
#include "mome.h"

namespace mome {

// Bytes that are either owned or borrowed from the bank file's mapping.
struct TableBytes {
    std::vector<uint8_t> owned;
    const uint8_t* data = nullptr;
    uint64_t size = 0;
    mome_tensor_type type = MOME_TENSOR_TYPE_F32;
    std::vector<int64_t> shape;  // row-major, outermost first (safetensors order)
};

struct MemoryLayer {
    int32_t block = 0;  // the model block this memory layer sits in
    TableBytes wq;      // [key_dim x n_embd], F32
    TableBytes centre;  // [n_embd], F32: subtracted from the layer's input before W_q
    TableBytes keys;    // flat: [n_experts x key_dim]; product: [2 x n_sub x key_dim/2]
    TableBytes a;       // [n_experts x rank x n_embd]
    TableBytes b;       // [n_experts x rank x n_embd]: each B_e transposed
    // The locality gate (memory/gate.h): unit signatures [n_signatures x key_dim], F32, and
    // the evidence a route needs; at or below -1 the gate is off and every route applies.
    TableBytes gate;
    std::unordered_set<uint64_t> gate_hashes;  // of the signatures' bits, built on the first add
    float gate_threshold = kGateOff;
    static constexpr float kGateOff = -2.0f;
};

// Checks parameters against the model and resolves the default layer.
mome_bank_params resolve_bank_params(const mome_llama_config& config, mome_bank_params params);

// Shapes of one memory layer's tables, for creation and for validating files.
std::vector<int64_t> wq_shape(const mome_bank_params& p, const mome_llama_config& c);
std::vector<int64_t> centre_shape(const mome_llama_config& c);
std::vector<int64_t> keys_shape(const mome_bank_params& p);
std::vector<int64_t> expert_shape(const mome_bank_params& p, const mome_llama_config& c);

// The model's identity: hyper-parameters and a checksum of every tensor's bytes, computed
// once per open model.
uint32_t model_fingerprint(const mome_model& model);

// Bytes of one element of a storage type (F32, F16 or BF16).
size_t element_size(mome_tensor_type type);

// Elements [first, first + count) of a table as F32, and back (rounded to the table's type;
// a table borrowed from a mapped file is copied into memory before its first write).
void read_floats(const TableBytes& t, int64_t first, int64_t count, float* dst);
void write_floats(TableBytes& t, int64_t first, int64_t count, const float* src);

}  // namespace mome

struct mome_bank {
    const mome_model* model = nullptr;
    mome_bank_params params{};
    std::vector<mome::MemoryLayer> layers;
    std::unique_ptr<mome::MappedFile> mapping;  // set when loaded from a file

    // The memory-layer slot of a model block, or -1.
    int slot_of_block(int64_t block) const {
        for (size_t i = 0; i < layers.size(); ++i)
            if (layers[i].block == block) return static_cast<int>(i);
        return -1;
    }
    // The memory layer in the lowest block: the frozen layers below give its input.
    int lowest_slot() const {
        int best = 0;
        for (size_t i = 1; i < layers.size(); ++i)
            if (layers[i].block < layers[static_cast<size_t>(best)].block) best = static_cast<int>(i);
        return best;
    }
};

namespace mome {

std::unique_ptr<mome_bank> create_bank(const mome_model& model, const mome_bank_params& params);

}  // namespace mome
