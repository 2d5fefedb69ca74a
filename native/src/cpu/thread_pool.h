// A fixed set of worker threads that run the chunks of one parallel loop at a time; the
// calling thread works too. Waits spin for a short while, then block: a decode step runs a
// parallel loop every few tens of microseconds, about what waking a blocked thread costs, but
// these machines share cores, so an idle pool must not keep spinning.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mome {

class ThreadPool {
public:
    explicit ThreadPool(int n_threads);  // total threads including the caller; >= 1
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls body(chunk) for chunk in [0, n_chunks), spread over the threads; returns when all
    // are done. The first exception thrown by a chunk is rethrown here. Calls from several
    // threads at once take turns.
    void run(int64_t n_chunks, const std::function<void(int64_t)>& body);

private:
    void work();
    void drain();

    std::vector<std::thread> workers_;
    std::mutex call_mutex_;  // one parallel loop at a time
    std::mutex mutex_;
    std::condition_variable start_, done_;
    const std::function<void(int64_t)>* body_ = nullptr;
    int64_t n_chunks_ = 0;
    std::atomic<int64_t> next_{0};
    std::atomic<int> busy_{0};
    std::atomic<uint64_t> generation_{0};
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace mome
