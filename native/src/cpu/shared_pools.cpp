#include "cpu/shared_pools.h"

#include <map>
#include <memory>
#include <mutex>

namespace mome {

ThreadPool& shared_pool(int n_threads) {
    static std::mutex mutex;
    static std::map<int, std::unique_ptr<ThreadPool>> pools;
    std::lock_guard<std::mutex> lock(mutex);
    auto& pool = pools[n_threads];
    if (!pool) pool = std::make_unique<ThreadPool>(n_threads);
    return *pool;
}

}  // namespace mome
