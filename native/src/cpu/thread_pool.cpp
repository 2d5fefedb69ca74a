#include "cpu/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace mome {

namespace {

// How long a wait spins before it blocks: longer than the gaps between the parallel loops
// of one decode step, far shorter than anything a person would notice as a busy core.
constexpr std::chrono::microseconds kSpin{10};

// Tells the core this is a spin loop (no yield: the scheduler may then give the core away for
// a whole time slice).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

// Spins until done() or kSpin has passed; true if done() became true.
template <class Done>
bool spin_until(const Done& done) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0;; ++i) {
        if (done()) return true;
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
        cpu_relax();
    }
}

}  // namespace

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
        if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
            std::unique_lock<std::mutex> lock(mutex_);
            start_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
            if (stop_) return;
        }
        seen = generation_.load(std::memory_order_acquire);
        drain();
        if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // Taking the lock orders this against a caller between its check and its wait.
            { std::lock_guard<std::mutex> lock(mutex_); }
            done_.notify_one();
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
        generation_.fetch_add(1, std::memory_order_release);
    }
    start_.notify_all();
    drain();
    if (!spin_until([&] { return busy_.load(std::memory_order_acquire) == 0; })) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return busy_.load(std::memory_order_acquire) == 0; });
    }
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
}

}  // namespace mome
