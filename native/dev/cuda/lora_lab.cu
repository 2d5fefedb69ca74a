// Grouped-LoRA lab: variants of out[t] += scale * sum_j w_j B_e (A_e u_t) at decode (one
// token per sequence), BF16 tables, validated against the CPU op (mome_lora_apply) and timed
// with events (L2 flushed, median).
//   1  naive: one thread per output element, walking every expert's A row and B column (rank 1 only)
//   2  Mome's kernels (mome_lora_apply on MOME_BACKEND_CUDA): shrink then expand, 16-byte loads
// Usage: lora_lab [sequences] [d] [ranks...]; one JSON line per variant and rank, with the
// bytes the op must read (each sequence's experts once) for the bandwidth fraction.
#include <cmath>

#include "lab_common.cuh"

namespace {

__global__ void naive_lora(const __nv_bfloat16* a, const __nv_bfloat16* b, int64_t d, int r, const float* u, const int* indices,
                           const float* weights, int k, float scale, float* out, int n_tokens) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= int64_t(n_tokens) * d) return;
    const int64_t t = i / d, c = i % d;
    float acc = 0;
    for (int j = 0; j < k; ++j) {
        const int64_t e = indices[t * k + j];
        for (int x = 0; x < r; ++x) {
            float z = 0;
            for (int64_t y = 0; y < d; ++y) z += __bfloat162float(a[(e * r + x) * d + y]) * u[t * d + y];
            acc += weights[t * k + j] * z * __bfloat162float(b[(e * r + x) * d + c]);
        }
    }
    out[i] += scale * acc;
}

}  // namespace

int main(int argc, char** argv) {
    const int seqs = argc > 1 ? std::atoi(argv[1]) : 256;
    const int64_t d = argc > 2 ? std::atoll(argv[2]) : 4096;
    std::vector<int> ranks;
    for (int i = 3; i < argc; ++i) ranks.push_back(std::atoi(argv[i]));
    if (ranks.empty()) ranks = {1, 4, 8};
    const int k = 32, n_experts = 1 << 14;
    std::vector<int> indices(size_t(seqs) * k);
    std::vector<float> weights(indices.size(), 1.0f / k);
    uint64_t state = 5;  // splitmix64: random expert picks (<random> does not pass nvcc 11.8 with libstdc++ 12)
    for (int& x : indices) {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull, z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        x = static_cast<int>((z ^ (z >> 31)) % n_experts);
    }
    std::vector<int64_t> offsets(seqs + 1);
    for (int s = 0; s <= seqs; ++s) offsets[s] = s;
    int *d_idx;
    float *d_w, *u, *out;
    int64_t* d_off;
    LAB_CUDA(cudaMalloc(&d_idx, indices.size() * 4));
    LAB_CUDA(cudaMalloc(&d_w, weights.size() * 4));
    LAB_CUDA(cudaMalloc(&d_off, offsets.size() * 8));
    LAB_CUDA(cudaMalloc(&u, size_t(seqs) * d * 4));
    LAB_CUDA(cudaMalloc(&out, size_t(seqs) * d * 4));
    LAB_CUDA(cudaMemcpy(d_idx, indices.data(), indices.size() * 4, cudaMemcpyHostToDevice));
    LAB_CUDA(cudaMemcpy(d_w, weights.data(), weights.size() * 4, cudaMemcpyHostToDevice));
    LAB_CUDA(cudaMemcpy(d_off, offsets.data(), offsets.size() * 8, cudaMemcpyHostToDevice));
    lab_random(u, uint64_t(seqs) * d, 3);
    for (int r : ranks) {
        __nv_bfloat16 *a, *b;
        const size_t table = size_t(n_experts) * r * d;
        LAB_CUDA(cudaMalloc(&a, table * 2));
        LAB_CUDA(cudaMalloc(&b, table * 2));
        lab_random(a, table, 10 + r, 0.3f);
        lab_random(b, table, 20 + r, 0.3f);
        // The CPU's update for the first sequences.
        const int checked = std::min(seqs, 8);
        std::vector<uint16_t> ha(table), hb(table);
        std::vector<float> hu(size_t(checked) * d), want(size_t(checked) * d, 0.0f);
        LAB_CUDA(cudaMemcpy(ha.data(), a, table * 2, cudaMemcpyDeviceToHost));
        LAB_CUDA(cudaMemcpy(hb.data(), b, table * 2, cudaMemcpyDeviceToHost));
        LAB_CUDA(cudaMemcpy(hu.data(), u, hu.size() * 4, cudaMemcpyDeviceToHost));
        const mome_lora_desc cpu{sizeof(mome_lora_desc), MOME_TENSOR_TYPE_BF16, n_experts, d, r, ha.data(), hb.data()};
        lab_ok(mome_lora_apply(&cpu, hu.data(), checked, offsets.data(), checked, indices.data(), weights.data(), k, 2.0f, want.data(), 0),
               "mome_lora_apply");
        const mome_lora_desc gpu{sizeof(mome_lora_desc), MOME_TENSOR_TYPE_BF16, n_experts, d, r, a, b, MOME_BACKEND_CUDA, 0, nullptr};
        const double bytes = double(seqs) * k * r * d * 2 * 2;  // A and B rows of each sequence's experts
        for (int variant = r == 1 ? 1 : 2; variant <= 2; ++variant) {  // the naive variant is too slow past rank 1
            auto run = [&] {
                if (variant == 1) naive_lora<<<unsigned((seqs * d + 255) / 256), 256>>>(a, b, d, r, u, d_idx, d_w, k, 2.0f, out, seqs);
                else lab_ok(mome_lora_apply(&gpu, u, seqs, d_off, seqs, d_idx, d_w, k, 2.0f, out, 0), "mome_lora_apply on CUDA");
            };
            LAB_CUDA(cudaMemset(out, 0, size_t(seqs) * d * 4));
            run();
            LAB_CUDA(cudaDeviceSynchronize());
            std::vector<float> got(size_t(checked) * d);
            LAB_CUDA(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
            double num = 0, den = 0;
            for (size_t i = 0; i < got.size(); ++i) num += (got[i] - want[i]) * double(got[i] - want[i]), den += double(want[i]) * want[i];
            const double ms = lab_time_ms(variant == 1 ? 3 : 50, run);
            std::printf("{\"op\":\"lora\",\"variant\":%d,\"sequences\":%d,\"d\":%lld,\"r\":%d,\"k\":%d,\"ms\":%.4f,\"bytes\":%.0f,\"rel_error\":%.2e}\n",
                        variant, seqs, (long long)d, r, k, ms, bytes, std::sqrt(num / den));
            std::fflush(stdout);
        }
        LAB_CUDA(cudaFree(a));
        LAB_CUDA(cudaFree(b));
    }
    return 0;
}
