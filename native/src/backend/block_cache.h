// Host memory for the CPU backends' buffers, kept for reuse. A graph step allocates and
// frees the same few dozen activation buffers every time; from the C library each one of
// those over its mmap threshold (128 KiB at first) is fresh pages from the kernel, faulted
// in and zeroed on every step. The cache keeps freed blocks by size class (sizes rounded up
// to a quarter of their power of two, so at most 25% is wasted) and hands them out again;
// what it holds is bounded, and returned to the C library when the backend goes.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace mome {

class BlockCache {
public:
    explicit BlockCache(uint64_t max_cached_bytes = uint64_t(128) << 20) : max_cached_(max_cached_bytes) {}
    ~BlockCache();  // frees the cached blocks (every buffer must be freed before its backend)
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;

    // A block of at least `bytes` (64-byte aligned); MOME_STATUS_OUT_OF_MEMORY when there is none.
    void* take(uint64_t bytes);
    // A block from take() back to the cache (or to the C library, when the cache is full). Never throws.
    void give(void* block);

    // The rounded size a request of `bytes` gets.
    static uint64_t size_class(uint64_t bytes);
    uint64_t cached_bytes() const;

private:
    mutable std::mutex mutex_;
    const uint64_t max_cached_;
    uint64_t cached_ = 0;
    std::unordered_map<uint64_t, std::vector<void*>> free_;  // size class -> free blocks
    std::unordered_map<void*, uint64_t> live_;                // block -> its size class
};

}  // namespace mome
