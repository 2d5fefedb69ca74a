// Random inputs, the error measure, and running a case on a backend.
#include <cmath>
#include <cstring>
#include <numeric>

#include "cases.h"
#include "core/error.h"
#include "core/half.h"
#include "quant/quant.h"

namespace backend_ops {

std::vector<float> random_normal(int64_t n, std::mt19937& rng, float stddev) {
    std::normal_distribution<float> normal(0.0f, stddev);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
}

std::vector<int32_t> random_ints(int64_t n, int32_t lo, int32_t hi, std::mt19937& rng) {
    std::uniform_int_distribution<int32_t> pick(lo, hi);
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (int32_t& x : v) x = pick(rng);
    return v;
}

HostTensor random_tensor(mome_tensor_type type, int64_t rows, int64_t cols, float stddev, std::mt19937& rng) {
    HostTensor t;
    t.type = type, t.rows = rows, t.cols = cols;
    const int64_t n = rows * cols;
    t.values = std::make_shared<std::vector<float>>(random_normal(n, rng, stddev));
    std::vector<float>& v = *t.values;
    if (type == MOME_TENSOR_TYPE_F32) {
        t.bytes = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(n) * 4);
        std::memcpy(t.bytes->data(), v.data(), t.bytes->size());
        return t;
    }
    if (type == MOME_TENSOR_TYPE_F16 || type == MOME_TENSOR_TYPE_BF16) {
        t.bytes = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(n) * 2);
        for (int64_t i = 0; i < n; ++i) {
            const uint16_t h = type == MOME_TENSOR_TYPE_F16 ? mome::float_to_f16(v[i]) : mome::float_to_bf16(v[i]);
            std::memcpy(t.bytes->data() + 2 * i, &h, 2);
            v[i] = type == MOME_TENSOR_TYPE_F16 ? mome::f16_to_float(h) : mome::bf16_to_float(h);
        }
        return t;
    }
    const int64_t row_bytes = mome::quant_row_bytes(type, cols);
    t.bytes = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(rows * row_bytes));
    uint8_t* bytes = t.bytes->data();
    if (type == MOME_TENSOR_TYPE_Q8_0 || type == MOME_TENSOR_TYPE_Q4_0) {
        for (int64_t r = 0; r < rows; ++r) mome::quantize_weight_row(type, v.data() + r * cols, cols, bytes + r * row_bytes);
    } else if (type == MOME_TENSOR_TYPE_Q4_K) {
        // Blocks of 144 bytes: F16 d and dmin, then random 6-bit scales and minima and nibbles;
        // x = d * sc * q - dmin * m with sc, m < 64 and q < 16.
        std::uniform_int_distribution<int> byte(0, 255);
        for (int64_t i = 0; i < rows * row_bytes; ++i) bytes[i] = static_cast<uint8_t>(byte(rng));
        const uint16_t d = mome::float_to_f16(stddev / 400), dmin = mome::float_to_f16(stddev / 60);
        for (int64_t at = 0; at < rows * row_bytes; at += 144) {
            std::memcpy(bytes + at, &d, 2);
            std::memcpy(bytes + at + 2, &dmin, 2);
        }
    } else {
        mome::fail(MOME_STATUS_UNSUPPORTED, "random_tensor makes F32, F16, BF16, Q8_0, Q4_0 and Q4_K tensors");
    }
    for (int64_t r = 0; r < rows; ++r) mome::dequantize_row(type, bytes + r * row_bytes, cols, v.data() + r * cols);
    return t;
}

HostTensor f32_tensor(const std::vector<float>& values, int64_t rows, int64_t cols) {
    HostTensor t;
    t.rows = rows, t.cols = cols;
    t.values = std::make_shared<std::vector<float>>(values);
    t.bytes = std::make_shared<std::vector<uint8_t>>(values.size() * 4);
    std::memcpy(t.bytes->data(), values.data(), t.bytes->size());
    return t;
}

const char* type_name(mome_tensor_type type) { return mome_tensor_type_name(type); }

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        const double d = static_cast<double>(a[i]) - b[i];
        num += d * d;
        den += static_cast<double>(b[i]) * b[i];
    }
    return num == 0 ? 0 : std::sqrt(num / std::max(den, 1e-300));
}

void Run::output(const float* p, int64_t n, std::vector<float> base) { float_outputs_.push_back({p, n, std::move(base)}); }
void Run::output(const int32_t* p, int64_t n) { int_outputs_.emplace_back(p, n); }

Outputs Run::outputs() {
    Outputs out;
    for (const FloatOut& f : float_outputs_) {
        std::vector<float> host = mome::download(backend, f.p, f.n);
        for (size_t i = 0; i < f.base.size(); ++i) host[i] -= f.base[i];
        out.floats.push_back(std::move(host));
    }
    for (const auto& [p, n] : int_outputs_) out.ints.push_back(mome::download(backend, p, n));
    return out;
}

void Run::wait() {
    float one = 0;
    if (!buffers_.empty()) backend.download(&one, buffers_.front().as<void>(), sizeof one);
}

std::string OpCase::label() const { return std::string(mome::op_name(op)) + "(" + type_name(type) + ", " + shape + ")"; }

Outputs run_case(const OpCase& c, Backend& backend) {
    Run run(backend);
    c.setup(run);
    run.call();
    return run.outputs();
}

LoraInputs random_lora(mome_tensor_type type, int64_t n_experts, int64_t dim, int32_t rank, int32_t top_k,
                       const std::vector<int64_t>& segment_lengths, bool route_order, std::mt19937& rng) {
    LoraInputs l;
    l.n_experts = n_experts, l.dim = dim, l.rank = rank, l.top_k = top_k;
    l.a = random_tensor(type, n_experts * rank, dim, 0.3f, rng);
    l.b = random_tensor(type, n_experts * rank, dim, 0.3f, rng);
    l.offsets = {0};
    for (int64_t len : segment_lengths) l.offsets.push_back(l.offsets.back() + len);
    l.u = random_normal(l.n_tokens() * dim, rng);
    std::vector<int32_t> experts(static_cast<size_t>(n_experts));
    std::uniform_real_distribution<float> weight(0.1f, 1.0f);
    for (size_t s = 0; s < segment_lengths.size(); ++s) {
        std::iota(experts.begin(), experts.end(), 0);
        if (!route_order) std::shuffle(experts.begin(), experts.end(), rng);
        l.indices.insert(l.indices.end(), experts.begin(), experts.begin() + top_k);
        for (int32_t j = 0; j < top_k; ++j) l.weights.push_back(weight(rng));
    }
    return l;
}

std::string LoraInputs::shape() const {
    return mome::format("experts=%lld d=%lld r=%d k=%d segments=%zu tokens=%lld", static_cast<long long>(n_experts),
                        static_cast<long long>(dim), rank, top_k, offsets.size() - 1, static_cast<long long>(n_tokens()));
}

mome::LoraBatch lora_batch(Run& run, const LoraInputs& l) {
    mome::LoraBatch b;
    b.u = run.put(l.u);
    b.n_tokens = l.n_tokens();
    b.segment_offsets = run.put(l.offsets);
    b.n_segments = static_cast<int64_t>(l.offsets.size()) - 1;
    b.indices = run.put(l.indices);
    b.weights = run.put(l.weights);
    b.top_k = l.top_k;
    b.scale = l.scale;
    return b;
}

mome::LoraTables lora_tables(const LoraInputs& l, const uint8_t* a, const uint8_t* b, mome_tensor_type type) {
    return mome::LoraTables{type, l.n_experts, l.dim, l.rank, a, b};
}

}  // namespace backend_ops
