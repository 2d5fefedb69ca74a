// Bank files: safetensors (an 8-byte header length, a JSON header, then the tables), with
// the bank's parameters, the base model's identity and a CRC-32C per table in the header's
// __metadata__. Saving is crash-safe; loading maps the file and verifies everything.
#pragma once

#include <memory>
#include <string>

#include "memory/bank.h"

namespace mome {

void save_bank(const mome_bank& bank, const std::string& path);

std::unique_ptr<mome_bank> load_bank(const mome_model& model, const std::string& path);

}  // namespace mome
