#include "backend/block_cache.h"

#include <cstdlib>

#include "core/error.h"

namespace mome {

namespace {
constexpr uint64_t kSmallest = 256, kAlignment = 64, kLargest = uint64_t(1) << 50;
}

uint64_t BlockCache::size_class(uint64_t bytes) {
    if (bytes <= kSmallest) return kSmallest;
    int top = 63;
    while (!((bytes - 1) >> top & 1)) --top;  // 2^top < bytes <= 2^(top + 1)
    const uint64_t quarter = uint64_t(1) << (top - 2);  // a quarter of 2^top: four classes per doubling
    return (bytes + quarter - 1) / quarter * quarter;
}

void* BlockCache::take(uint64_t bytes) {
    if (bytes > kLargest)  // no machine has it; refused before the size class could overflow
        fail(MOME_STATUS_OUT_OF_MEMORY, format("could not allocate %llu bytes", static_cast<unsigned long long>(bytes)));
    const uint64_t size = size_class(bytes);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = free_.find(size);
        if (it != free_.end() && !it->second.empty()) {
            void* block = it->second.back();
            it->second.pop_back();
            cached_ -= size;
            live_.emplace(block, size);
            return block;
        }
    }
    void* block = std::aligned_alloc(kAlignment, size);
    if (!block) fail(MOME_STATUS_OUT_OF_MEMORY, format("could not allocate %llu bytes", static_cast<unsigned long long>(bytes)));
    std::lock_guard<std::mutex> lock(mutex_);
    live_.emplace(block, size);
    return block;
}

void BlockCache::give(void* block) {
    if (!block) return;
    std::unique_lock<std::mutex> lock(mutex_);
    const auto it = live_.find(block);
    if (it == live_.end()) {  // not one of ours (never the case): what the C library gave, it takes back
        lock.unlock();
        std::free(block);
        return;
    }
    const uint64_t size = it->second;
    live_.erase(it);
    if (cached_ + size > max_cached_) {
        lock.unlock();
        std::free(block);
        return;
    }
    free_[size].push_back(block);
    cached_ += size;
}

uint64_t BlockCache::cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
}

BlockCache::~BlockCache() {
    for (auto& [size, blocks] : free_)
        for (void* b : blocks) std::free(b);
}

}  // namespace mome
