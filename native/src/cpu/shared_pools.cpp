#include "cpu/shared_pools.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace mome {

ThreadPool& shared_pool(int n_threads) {
    static std::mutex mutex;
    static std::map<int, std::unique_ptr<ThreadPool>> pools;
    std::lock_guard<std::mutex> lock(mutex);
    auto& pool = pools[n_threads];
    if (!pool) pool = std::make_unique<ThreadPool>(n_threads);
    return *pool;
}

int threads_or_all(int n_threads) {
    if (n_threads < 0 || n_threads > 1024) fail(MOME_STATUS_INVALID_ARGUMENT, format("n_threads = %d is outside 0..1024", n_threads));
    return n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace mome
