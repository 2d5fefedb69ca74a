// Tuner checkpoints: the bank and, beside it, the tuner's state file "<bank>.state".
//
// State file layout (little-endian):
//   "MOMETUNR"  u32 version (1)
//   header:     i32 epoch, i32 position, i64 updates, f64 epoch_loss, i32 epoch_exact,
//               f64 elapsed_seconds, u32 n_facts, u32 facts_crc, u64 bank_size, u32 bank_crc,
//               u32 optimizer, i64 rank, i64 n_embd, i64 key_dim, i64 key_row, i64 n_experts
//   3 sections (experts' A/B tables, key rows, W_q), each:
//               u64 count, u64 floats per entry, then count x (u64 key, i64 steps, floats)
//   u32 CRC-32C of everything before it.
// Every count is checked against the file's length, every key and shape against the bank,
// before anything is allocated.
#pragma once

#include <cstdint>
#include <string>

#include "memory/tuner.h"

namespace mome {

// Size and CRC-32C of a file's bytes (IO_ERROR naming it when it cannot be read).
struct FileDigest {
    uint64_t size = 0;
    uint32_t crc = 0;
    bool operator==(const FileDigest& o) const { return size == o.size && crc == o.crc; }
};
FileDigest file_digest(const std::string& path);

// The bank to "<path>.next", the state to "<path>.state" (keeping the one it replaces as
// "<path>.state.prev"), then the bank renamed to `path`.
void tuner_checkpoint(const mome_tuner& tuner, const std::string& path, double elapsed_seconds);

mome_resume_outcome tuner_resume(mome_tuner& tuner, const std::string& path, double& elapsed_seconds);

}  // namespace mome
