// The cases of mome_backend_ops: one op of backend/backend.h with random inputs, which any
// backend can run (its inputs copied to the backend, the op, its outputs copied back), so that
// main.cpp compares every backend present against cpu-ref, checks cpu-ref's backward ops
// against finite differences of its forward ops, and times them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "mome.h"

namespace backend_ops {

using mome::Backend;
using mome::Op;

constexpr mome_tensor_type kF32 = MOME_TENSOR_TYPE_F32;

// A weight or table on the host, and every element as F32 (what the backends compute with).
struct HostTensor {
    std::shared_ptr<std::vector<uint8_t>> bytes;
    std::shared_ptr<std::vector<float>> values;
    mome_tensor_type type = kF32;
    int64_t rows = 0, cols = 0;
    mome::Tensor view() const { return mome::Tensor{bytes->data(), type, rows, cols}; }
};

std::vector<float> random_normal(int64_t n, std::mt19937& rng, float stddev = 1.0f);
std::vector<int32_t> random_ints(int64_t n, int32_t lo, int32_t hi, std::mt19937& rng);  // in [lo, hi]
// Normal values (stddev) stored in `type`: F32, F16, BF16, Q8_0 or Q4_0 (llama.cpp's
// quantizer) or Q4_K (random blocks with scales that keep elements near stddev).
HostTensor random_tensor(mome_tensor_type type, int64_t rows, int64_t cols, float stddev, std::mt19937& rng);
HostTensor f32_tensor(const std::vector<float>& values, int64_t rows, int64_t cols);
const char* type_name(mome_tensor_type type);

// |a - b| / |b| over all elements (infinite when a has a value that is not finite).
double rel_error(const std::vector<float>& a, const std::vector<float>& b);

// What a case reads back after its op.
struct Outputs {
    std::vector<std::vector<float>> floats;
    std::vector<std::vector<int32_t>> ints;
};

// One case on one backend: device copies of the case's inputs, the op over them, and the
// device arrays it writes.
class Run {
public:
    explicit Run(Backend& backend) : backend(backend) {}
    Backend& backend;
    std::function<void()> call;  // the op (the backend may queue it)

    template <typename T>
    T* put(const std::vector<T>& host) {
        buffers_.push_back(mome::upload(backend, host));
        return buffers_.back().as<T>();
    }
    float* poisoned(int64_t n) { return put(std::vector<float>(static_cast<size_t>(n), NAN)); }  // unwritten elements show
    mome::Tensor tensor(const HostTensor& t) { return backend.to_device(t.view()); }
    // After the op, n values at p come back; an accumulated output minus `base`, the values
    // it started from, so that only what the op added is compared.
    void output(const float* p, int64_t n, std::vector<float> base = {});
    void output(const int32_t* p, int64_t n);
    Outputs outputs();  // waits for the op
    void wait();        // waits for the op (a download of one value)

private:
    std::vector<mome::Buffer> buffers_;
    struct FloatOut {
        const float* p;
        int64_t n;
        std::vector<float> base;
    };
    std::vector<FloatOut> float_outputs_;
    std::vector<std::pair<const int32_t*, int64_t>> int_outputs_;
};

struct OpCase {
    OpCase() = default;
    OpCase(Op op, mome_tensor_type type, std::string shape, double tol) : op(op), type(type), shape(std::move(shape)), tol(tol) {}
    Op op = Op::Add;
    mome_tensor_type type = kF32;  // of the op's weights or tables (F32 for ops without)
    std::string shape;
    double tol = 0;       // bound on the normalised error against cpu-ref (0: equal)
    double gpu_tol = -1;  // the bound on a GPU backend, where it differs (else negative)
    double flops = 0, bytes = 0;       // one call's arithmetic and memory traffic, for perf
    std::function<void(Run&)> setup;  // puts the inputs, sets run.call, names the outputs

    std::string label() const;  // "op(type, shape)"
    double tolerance(const Backend& b) const { return b.device() != mome::Device::Host && gpu_tol >= 0 ? gpu_tol : tol; }
};

Outputs run_case(const OpCase& c, Backend& backend);

using Inputs = std::vector<std::vector<float>>;

// A backward op with the forward op it differentiates: L = sum(r * forward(inputs)).
struct GradCase {
    OpCase test;  // accumulated outputs start from random values (mode test)
    OpCase grad;  // they start from zero: its outputs are dL/d(inputs) (after to_gradients)
    std::vector<std::string> names;  // of the differentiated inputs
    Inputs inputs;
    std::vector<float> r;
    std::function<void(Run&, const Inputs&)> forward;  // sets run.call and one float output
    std::function<Inputs(const Outputs&)> to_gradients;  // null: the float outputs in input order
};

// Grouped-LoRA inputs: tables of `type` and a batch over segments of the given lengths.
struct LoraInputs {
    HostTensor a, b;  // [n_experts * rank x dim]
    int64_t n_experts = 0, dim = 0;
    int32_t rank = 0, top_k = 0;
    float scale = 1.5f;
    std::vector<int64_t> offsets;
    std::vector<int32_t> indices;
    std::vector<float> u, weights;
    int64_t n_tokens() const { return offsets.back(); }
    std::string shape() const;
};
// Indices: `route_order` gives every segment experts 0..top_k-1 (as tuning gathers them),
// else distinct random experts per segment.
LoraInputs random_lora(mome_tensor_type type, int64_t n_experts, int64_t dim, int32_t rank, int32_t top_k,
                       const std::vector<int64_t>& segment_lengths, bool route_order, std::mt19937& rng);
// The batch on run's backend with its tables a, b (device copies of `a` and `b` or of other
// F32 values in their layout).
mome::LoraBatch lora_batch(Run& run, const LoraInputs& l);
mome::LoraTables lora_tables(const LoraInputs& l, const uint8_t* a, const uint8_t* b, mome_tensor_type type);

// RoPE over whole heads of head_dim (base 500000, scale 0.5), with Llama 3 style factors
// (on run's device) when asked.
mome::RopeParams rope_case_params(int64_t head_dim, bool factors, Run& run);

std::vector<OpCase> forward_cases(std::mt19937& rng);
std::vector<OpCase> forward_perf_cases(std::mt19937& rng);
std::vector<GradCase> backward_cases(std::mt19937& rng);
std::vector<GradCase> backward_perf_cases(std::mt19937& rng);

// The cases through the C ABI on a CUDA device (router, grouped LoRA, whole sessions, a
// tuning step): returns the number of failures. And the ABI-level timings (router, sessions
// of the `small` preset and of a Llama-3-8B shape).
int run_abi_tests(int device, unsigned seed);
int run_abi_perf(int device);

}  // namespace backend_ops
