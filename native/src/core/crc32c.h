// CRC-32C (Castagnoli), the checksum of bank files: SSE4.2's crc32 instruction when the CPU
// has it (several GB/s), a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mome {

// Continues `crc` (start with 0) over `size` bytes.
uint32_t crc32c(uint32_t crc, const void* data, size_t size);

}  // namespace mome
