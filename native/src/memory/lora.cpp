#include "memory/lora.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "cpu/thread_pool.h"

namespace mome {

namespace {

float load(mome_tensor_type type, const uint8_t* base, int64_t i) {
    if (type == MOME_TENSOR_TYPE_F32) {
        float x;
        std::memcpy(&x, base + 4 * i, 4);
        return x;
    }
    uint16_t h;
    std::memcpy(&h, base + 2 * i, 2);
    return type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
}

void load_row(mome_tensor_type type, const uint8_t* base, int64_t row, int64_t dim, float* dst) {
    const int64_t start = row * dim;
    if (type == MOME_TENSOR_TYPE_F32) {
        std::memcpy(dst, base + 4 * start, static_cast<size_t>(dim) * 4);
        return;
    }
    const auto* src = reinterpret_cast<const uint16_t*>(base) + start;
    if (type == MOME_TENSOR_TYPE_F16)
        for (int64_t i = 0; i < dim; ++i) dst[i] = f16_to_float(src[i]);
    else
        for (int64_t i = 0; i < dim; ++i) dst[i] = bf16_to_float(src[i]);
}

// Eight independent partial sums: the compiler turns the inner loop into SIMD.
float dot(const float* a, const float* b, int64_t n) {
    float lanes[8] = {};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int l = 0; l < 8; ++l) lanes[l] += a[k + l] * b[k + l];
    float s = 0;
    for (float x : lanes) s += x;
    for (; k < n; ++k) s += a[k] * b[k];
    return s;
}

}  // namespace

void check_lora_batch(const LoraTables& t, const LoraBatch& b) {
    require_arg(b.u && b.segment_offsets && b.indices && b.weights, "u, segment_offsets, indices or weights is null");
    if (b.n_tokens < 1 || b.n_segments < 1 || b.top_k < 1)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("grouped LoRA: n_tokens = %lld, n_segments = %lld, top_k = %d must all be >= 1",
                                                  static_cast<long long>(b.n_tokens), static_cast<long long>(b.n_segments), b.top_k));
    if (!std::isfinite(b.scale)) fail(MOME_STATUS_INVALID_ARGUMENT, "grouped LoRA: scale is not finite");
    if (b.segment_offsets[0] != 0 || b.segment_offsets[b.n_segments] != b.n_tokens)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("grouped LoRA: segment offsets must run from 0 to n_tokens = %lld",
                                                  static_cast<long long>(b.n_tokens)));
    for (int64_t s = 0; s < b.n_segments; ++s)
        if (b.segment_offsets[s + 1] < b.segment_offsets[s])
            fail(MOME_STATUS_INVALID_ARGUMENT, format("grouped LoRA: segment %lld ends before it starts", static_cast<long long>(s)));
    for (int64_t i = 0; i < b.n_segments * b.top_k; ++i) {
        if (b.indices[i] < 0 || b.indices[i] >= t.n_experts)
            fail(MOME_STATUS_OUT_OF_RANGE, format("grouped LoRA: expert index %d (segment %lld) is outside 0..%lld", b.indices[i],
                                                  static_cast<long long>(i / b.top_k), static_cast<long long>(t.n_experts - 1)));
        if (!std::isfinite(b.weights[i]))
            fail(MOME_STATUS_INVALID_ARGUMENT, format("grouped LoRA: weight %lld of segment %lld is not finite",
                                                      static_cast<long long>(i % b.top_k), static_cast<long long>(i / b.top_k)));
    }
}

void lora_apply_ref(const LoraTables& t, const LoraBatch& b, float* out) {
    const int64_t d = t.dim, r = t.rank;
    for (int64_t s = 0; s < b.n_segments; ++s)
        for (int64_t tok = b.segment_offsets[s]; tok < b.segment_offsets[s + 1]; ++tok) {
            const float* u = b.u + tok * d;
            std::vector<double> delta(static_cast<size_t>(d), 0.0);
            for (int j = 0; j < b.top_k; ++j) {
                const int64_t e = b.indices[s * b.top_k + j];
                const double w = b.weights[s * b.top_k + j];
                for (int64_t rho = 0; rho < r; ++rho) {
                    double z = 0;  // (A_e u)[rho]
                    for (int64_t i = 0; i < d; ++i) z += static_cast<double>(load(t.type, t.a, (e * r + rho) * d + i)) * u[i];
                    for (int64_t i = 0; i < d; ++i) delta[static_cast<size_t>(i)] += w * z * load(t.type, t.b, (e * r + rho) * d + i);
                }
            }
            for (int64_t i = 0; i < d; ++i) out[tok * d + i] += static_cast<float>(b.scale * delta[static_cast<size_t>(i)]);
        }
}

void lora_apply(const LoraTables& t, const LoraBatch& b, float* out, ThreadPool& pool) {
    const int64_t d = t.dim, r = t.rank, rows = b.top_k * r;
    pool.run(b.n_segments, [&](int64_t s) {
        const int64_t begin = b.segment_offsets[s], end = b.segment_offsets[s + 1];
        if (begin == end) return;
        // Gather the segment's experts once: rows j*r + rho of A and of B^T.
        thread_local std::vector<float> a, bt, z;
        a.resize(static_cast<size_t>(rows * d));
        bt.resize(static_cast<size_t>(rows * d));
        z.resize(static_cast<size_t>(rows));
        for (int j = 0; j < b.top_k; ++j) {
            const int64_t e = b.indices[s * b.top_k + j];
            for (int64_t rho = 0; rho < r; ++rho) {
                load_row(t.type, t.a, e * r + rho, d, a.data() + (j * r + rho) * d);
                load_row(t.type, t.b, e * r + rho, d, bt.data() + (j * r + rho) * d);
            }
        }
        for (int64_t tok = begin; tok < end; ++tok) {
            const float* u = b.u + tok * d;
            for (int64_t row = 0; row < rows; ++row)
                z[static_cast<size_t>(row)] = dot(a.data() + row * d, u, d) * b.weights[s * b.top_k + row / r] * b.scale;
            float* o = out + tok * d;
            for (int64_t row = 0; row < rows; ++row) {
                const float zr = z[static_cast<size_t>(row)];
                const float* bt_row = bt.data() + row * d;
                for (int64_t i = 0; i < d; ++i) o[i] += zr * bt_row[i];
            }
        }
    });
}

}  // namespace mome
