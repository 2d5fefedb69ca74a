// Router lab: variants of the flat top-k router on one BF16 key table, validated against the
// CPU router (mome_route) on a few queries and timed with events (L2 flushed, median).
//   1  naive: the whole B x N score matrix to memory, then one warp per query scans it
//   2  Mome's fused kernel (mome_route on MOME_BACKEND_CUDA): tiles scored on tensor cores, top-k kept in
//      registers, the score matrix never written
// Usage: router_lab [N] [d] [B...]; prints one JSON line per variant and size.
#include <cmath>
#include <cstring>
#include <set>
#include <string>

#include "cuda/warp_topk.cuh"
#include "lab_common.cuh"

namespace {

__global__ void naive_scores(const __nv_bfloat16* keys, const float* q, int n, int d, int b, float* scores) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= int64_t(n) * b) return;
    const int query = static_cast<int>(i / n), key = static_cast<int>(i % n);
    float dot = 0;
    for (int e = 0; e < d; ++e) dot += q[int64_t(query) * d + e] * __bfloat162float(keys[int64_t(key) * d + e]);
    scores[i] = dot;
}

__global__ void naive_topk(const float* scores, int n, int b, int k, float scale, int* indices, float* weights) {
    const int query = blockIdx.x;
    mome::WarpTopK list;
    for (int base = 0; base < n; base += 32) {
        const int i = base + threadIdx.x;
        list.offer(i < n ? scores[int64_t(query) * n + i] : -INFINITY, i < n ? i : 0x7fffffff, k);
    }
    mome::write_route(list, k, scale, 1.0f, indices + query * k, weights + query * k, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    const int n = argc > 1 ? std::atoi(argv[1]) : 1 << 20, d = argc > 2 ? std::atoi(argv[2]) : 256, k = 32;
    std::vector<int> batches;
    for (int i = 3; i < argc; ++i) batches.push_back(std::atoi(argv[i]));
    if (batches.empty()) batches = {1, 16, 64, 256, 1024};
    __nv_bfloat16* keys;
    LAB_CUDA(cudaMalloc(&keys, size_t(n) * d * 2));
    lab_random(keys, uint64_t(n) * d, 1);
    std::vector<uint16_t> host_keys(size_t(n) * d);
    LAB_CUDA(cudaMemcpy(host_keys.data(), keys, host_keys.size() * 2, cudaMemcpyDeviceToHost));
    for (int b : batches) {
        float *q, *scores, *w;
        int* idx;
        LAB_CUDA(cudaMalloc(&q, size_t(b) * d * 4));
        LAB_CUDA(cudaMalloc(&idx, size_t(b) * k * 4));
        LAB_CUDA(cudaMalloc(&w, size_t(b) * k * 4));
        LAB_CUDA(cudaMalloc(&scores, size_t(b) * n * 4));
        lab_random(q, uint64_t(b) * d, 2 + b);
        std::vector<float> host_q(size_t(b) * d);
        LAB_CUDA(cudaMemcpy(host_q.data(), q, host_q.size() * 4, cudaMemcpyDeviceToHost));
        // The CPU's answer for the first queries.
        const int checked = std::min(b, 4);
        mome_router_desc cpu{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_BF16, n, d, host_keys.data(), k, 1.0f};
        std::vector<int32_t> want(size_t(checked) * k);
        std::vector<float> want_w(want.size());
        lab_ok(mome_route(&cpu, host_q.data(), checked, want.data(), want_w.data(), nullptr, 0), "mome_route");
        const mome_router_desc gpu{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_BF16, n, d, keys, k, 1.0f,
                                    MOME_BACKEND_CUDA, 0, nullptr};
        for (int variant = 1; variant <= 2; ++variant) {
            auto run = [&] {
                if (variant == 1) {
                    naive_scores<<<unsigned((int64_t(n) * b + 255) / 256), 256>>>(keys, q, n, d, b, scores);
                    naive_topk<<<b, 32>>>(scores, n, b, k, 1.0f / std::sqrt(float(d)), idx, w);
                } else {
                    lab_ok(mome_route(&gpu, q, b, idx, w, nullptr, 0), "mome_route on CUDA");
                }
            };
            run();
            LAB_CUDA(cudaDeviceSynchronize());
            std::vector<int32_t> got(size_t(checked) * k);
            LAB_CUDA(cudaMemcpy(got.data(), idx, got.size() * 4, cudaMemcpyDeviceToHost));
            int differ = 0;
            for (int i = 0; i < checked; ++i) {
                const std::set<int32_t> a(want.begin() + i * k, want.begin() + (i + 1) * k), g(got.begin() + i * k, got.begin() + (i + 1) * k);
                for (int32_t x : g) differ += !a.count(x);
            }
            const double ms = lab_time_ms(variant == 1 && int64_t(n) * b > (int64_t(1) << 28) ? 3 : 30, run);
            std::printf("{\"op\":\"router\",\"variant\":%d,\"N\":%d,\"d\":%d,\"B\":%d,\"k\":%d,\"ms\":%.4f,\"differ_from_cpu\":%d,\"checked\":%d}\n",
                        variant, n, d, b, k, ms, differ, checked * k);
            std::fflush(stdout);
        }
        LAB_CUDA(cudaFree(q));
        LAB_CUDA(cudaFree(idx));
        LAB_CUDA(cudaFree(w));
        LAB_CUDA(cudaFree(scores));
    }
    LAB_CUDA(cudaFree(keys));
    return 0;
}
