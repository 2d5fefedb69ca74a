// Thread pools shared by the standalone operators, one per thread count, created on first
// use and kept for the life of the process (creating threads per call would dominate small
// operations).
#pragma once

#include "cpu/thread_pool.h"

namespace mome {

ThreadPool& shared_pool(int n_threads);  // n_threads >= 1

// An ABI call's n_threads: 1..1024 as given, 0 for every hardware thread; else refused.
int threads_or_all(int n_threads);

}  // namespace mome
