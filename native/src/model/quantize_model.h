// `mome model quantize`: a GGUF model with its F32/F16/BF16 matrices quantized to Q8_0 or
// Q4_0 (metadata and vectors copied as they are).
#pragma once

#include <string>

#include "mome.h"

namespace mome {

// Writes `dst` atomically; on failure no file at `dst` is changed.
void quantize_model(const std::string& src, const std::string& dst, mome_tensor_type type);

}  // namespace mome
