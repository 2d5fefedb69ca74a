#include "cpu/thread_pool.h"

namespace mome {

ThreadPool::ThreadPool(int n_threads) {
    for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    start_.notify_all();
    for (std::thread& t : workers_) t.join();
}

void ThreadPool::drain() {
    for (int64_t i; (i = next_.fetch_add(1)) < n_chunks_;) {
        try {
            (*body_)(i);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
    }
}

void ThreadPool::work() {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            start_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        drain();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--busy_ == 0) done_.notify_one();
        }
    }
}

void ThreadPool::run(int64_t n_chunks, const std::function<void(int64_t)>& body) {
    if (n_chunks <= 0) return;
    if (workers_.empty() || n_chunks == 1) {
        for (int64_t i = 0; i < n_chunks; ++i) body(i);
        return;
    }
    std::lock_guard<std::mutex> call(call_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        body_ = &body;
        n_chunks_ = n_chunks;
        next_ = 0;
        busy_ = static_cast<int>(workers_.size());
        error_ = nullptr;
        ++generation_;
    }
    start_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
}

}  // namespace mome
