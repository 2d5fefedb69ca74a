// The CPU backends' buffer cache: sizes, reuse, its bound, and buffers that stay usable.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "backend/backend.h"
#include "backend/block_cache.h"
#include "cpu/thread_pool.h"

namespace {

using mome::BlockCache;

TEST(BlockCache, SizeClassesCoverEveryRequestWithAtMostAQuarterWasted) {
    uint64_t previous = 0;
    for (uint64_t bytes = 1; bytes <= (uint64_t(1) << 22); bytes += 1 + bytes / 97) {
        const uint64_t size = BlockCache::size_class(bytes);
        EXPECT_GE(size, bytes);
        EXPECT_GE(size, previous) << "classes grow with the request";
        if (bytes > 256) EXPECT_LE(size, bytes + bytes / 4 + 1) << bytes;
        previous = size;
    }
    EXPECT_EQ(BlockCache::size_class(1), 256u);
    EXPECT_EQ(BlockCache::size_class(1024), 1024u);
    EXPECT_EQ(BlockCache::size_class(1025), 1280u);
    EXPECT_EQ(BlockCache::size_class(257), 320u);
    EXPECT_EQ(BlockCache::size_class(uint64_t(1) << 40), uint64_t(1) << 40);
}

TEST(BlockCache, AFreedBlockIsHandedOutAgainForTheSameClass) {
    BlockCache cache;
    void* a = cache.take(100000);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
    std::memset(a, 1, 100000);
    cache.give(a);
    EXPECT_EQ(cache.cached_bytes(), BlockCache::size_class(100000));
    void* b = cache.take(99000);  // the same class
    EXPECT_EQ(a, b);
    EXPECT_EQ(cache.cached_bytes(), 0u);
    void* c = cache.take(100000);  // the cached one is in use: a new block
    EXPECT_NE(b, c);
    cache.give(b);
    cache.give(c);
    EXPECT_EQ(cache.cached_bytes(), 2 * BlockCache::size_class(100000));
}

TEST(BlockCache, WhatItKeepsStaysWithinItsBound) {
    BlockCache cache(1 << 20);
    std::vector<void*> blocks;
    for (int i = 0; i < 10; ++i) blocks.push_back(cache.take(300000));
    std::set<void*> distinct(blocks.begin(), blocks.end());
    EXPECT_EQ(distinct.size(), blocks.size());
    for (void* b : blocks) cache.give(b);
    EXPECT_LE(cache.cached_bytes(), uint64_t(1) << 20);
    EXPECT_GT(cache.cached_bytes(), 0u);
}

TEST(BlockCache, AHugeRequestIsAnErrorNotACrash) {
    BlockCache cache;
    EXPECT_THROW(cache.take(uint64_t(1) << 62), std::exception);
}

// Buffers of one backend, freed and taken again in a loop as a graph step does: each one
// holds what was written to it, and no two live buffers overlap.
TEST(BlockCache, BackendBuffersReusedAcrossStepsKeepTheirContents) {
    mome::ThreadPool pool(1);
    const auto backend = mome::make_cpu_fast_backend(pool);
    for (int step = 0; step < 4; ++step) {
        std::vector<mome::Buffer> live;
        for (int i = 0; i < 8; ++i) {
            live.push_back(mome::floats(*backend, 1000 + 37 * i, true));
            float* p = live.back().as();
            for (int k = 0; k < 1000 + 37 * i; ++k) {
                ASSERT_EQ(p[k], 0.0f) << "zeroed when asked";
                p[k] = static_cast<float>(step * 100 + i);
            }
        }
        for (int i = 0; i < 8; ++i) {
            const float* p = live[static_cast<size_t>(i)].as();
            for (int k = 0; k < 1000 + 37 * i; ++k) ASSERT_EQ(p[k], static_cast<float>(step * 100 + i)) << "buffer " << i;
        }
    }
}

}  // namespace
