// The benchmark peer for `mome bench router`: FAISS IndexFlatIP (exact inner product) over
// the same seeded keys and queries Mome's benchmark generates, timed the same way. Built
// only when FAISS is installed; nothing in the engine or its tests depends on it.
//
// usage: mome_faiss_bench <n_keys> <dim> <n_queries> <k> <threads> <repeats> <seed>
// prints one JSON line: {"median_s":..., "qps":..., "first_indices":[...]}
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

// Must stay identical to Mome.Bench's SeededValues: splitmix64 of (seed, index), top 24 bits
// mapped to [-1, 1), exact in float.
float seeded_value(uint64_t seed, uint64_t index) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + index + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) / 8388608.0f - 1.0f;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: %s n_keys dim n_queries k threads repeats seed\n", argv[0]);
        return 2;
    }
    const int64_t n = std::atoll(argv[1]), d = std::atoll(argv[2]), nq = std::atoll(argv[3]);
    const int k = std::atoi(argv[4]), threads = std::atoi(argv[5]), repeats = std::atoi(argv[6]);
    const uint64_t seed = std::strtoull(argv[7], nullptr, 10);
    if (n < 1 || d < 1 || nq < 1 || k < 1 || k > n || threads < 1 || repeats < 1) {
        std::fprintf(stderr, "bad arguments\n");
        return 2;
    }
    omp_set_num_threads(threads);
    std::vector<float> keys(static_cast<size_t>(n * d)), queries(static_cast<size_t>(nq * d));
    for (int64_t i = 0; i < n * d; ++i) keys[static_cast<size_t>(i)] = seeded_value(seed, static_cast<uint64_t>(i));
    for (int64_t i = 0; i < nq * d; ++i) queries[static_cast<size_t>(i)] = seeded_value(seed + 1, static_cast<uint64_t>(i));
    faiss::IndexFlatIP index(d);
    index.add(n, keys.data());
    std::vector<float> distances(static_cast<size_t>(nq * k));
    std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(nq * k));
    std::vector<double> times;
    for (int r = 0; r <= repeats; ++r) {  // the first run warms up and is dropped
        const auto start = std::chrono::steady_clock::now();
        index.search(nq, queries.data(), k, distances.data(), labels.data());
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r > 0) times.push_back(s);
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    std::printf("{\"median_s\":%.9f,\"qps\":%.3f,\"first_indices\":[", median, static_cast<double>(nq) / median);
    for (int j = 0; j < k; ++j) std::printf("%s%lld", j ? "," : "", static_cast<long long>(labels[static_cast<size_t>(j)]));
    std::printf("]}\n");
    return 0;
}
