// Thread pools shared by the standalone operators, one per thread count, created on first
// use and kept for the life of the process (creating threads per call would dominate small
// operations).
#pragma once

#include "cpu/thread_pool.h"

namespace mome {

ThreadPool& shared_pool(int n_threads);  // n_threads >= 1

}  // namespace mome
