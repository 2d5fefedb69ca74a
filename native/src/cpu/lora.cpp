#include "cpu/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/abi_enum.h"
#include "core/error.h"
#include "core/half.h"
#include "cpu/matmul_variants.h"
#include "cpu/thread_pool.h"
#include "gguf/tensor_types.h"

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

}  // namespace

LoraTables lora_tables_of(const mome_lora_desc& e) {
    require_arg(e.a != nullptr && e.b != nullptr, "the expert tables a or b are null");
    const uint32_t weight_type = static_cast<uint32_t>(abi_enum(e.weight_type));
    if (!is_compute_type(weight_type))
        fail(MOME_STATUS_UNSUPPORTED, format("expert weight type %s is not F32, F16 or BF16", tensor_type_name(weight_type).c_str()));
    if (e.n_experts < 1 || e.dim < 1 || e.rank < 1 || e.dim > (int64_t(1) << 24) || e.rank > 4096 || e.n_experts > (int64_t(1) << 40))
        fail(MOME_STATUS_INVALID_ARGUMENT, "expert tables: n_experts, dim and rank must be positive and sane");
    return LoraTables{e.weight_type, e.n_experts, e.dim, e.rank, static_cast<const uint8_t*>(e.a), static_cast<const uint8_t*>(e.b)};
}

void check_lora_shape(const LoraBatch& b) {
    require_arg(b.u && b.segment_offsets && b.indices && b.weights, "u, segment_offsets, indices or weights is null");
    if (b.n_tokens < 1 || b.n_segments < 1 || b.top_k < 1)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("grouped LoRA: n_tokens = %lld, n_segments = %lld, top_k = %d must all be >= 1",
                                                  static_cast<long long>(b.n_tokens), static_cast<long long>(b.n_segments), b.top_k));
    if (!std::isfinite(b.scale)) fail(MOME_STATUS_INVALID_ARGUMENT, "grouped LoRA: scale is not finite");
}

void check_lora_batch(const LoraTables& t, const LoraBatch& b) {
    check_lora_shape(b);
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

namespace {

// The lines of [p, p + bytes), asked for ahead of their use: routed experts lie scattered
// over the table, so without it every row starts with a full miss to memory.
void prefetch(const uint8_t* p, size_t bytes) {
    for (size_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i, 0, 3);
}

}  // namespace

void lora_apply(const LoraTables& t, const LoraBatch& b, float* out, ThreadPool& pool) {
    const int64_t d = t.dim, r = t.rank;
    const size_t expert_bytes = static_cast<size_t>(r * d) * (t.type == MOME_TENSOR_TYPE_F32 ? 4 : 2);
    const MatmulRowsFn rows = matmul_rows_best();
    const AxpyRowFn axpy = axpy_row_best();
    // Route entries (segment s, expert j) in order: while entry i computes, the first lines of
    // the A and B rows of entry i + ahead are asked for, about 16 KiB ahead (the next segment's
    // too: whichever thread takes it finds them on the way); the hardware streams the rest.
    const int64_t n_entries = b.n_segments * b.top_k;
    const int64_t kAhead = std::max<int64_t>(2, static_cast<int64_t>((16u << 10) / (2 * expert_bytes)));
    const size_t head = std::min<size_t>(expert_bytes, 4096);
    auto expert_of = [&](int64_t entry) { return static_cast<uint64_t>(b.indices[entry]) * expert_bytes; };
    pool.run(b.n_segments, [&](int64_t s) {
        const int64_t begin = b.segment_offsets[s], n = b.segment_offsets[s + 1] - begin;
        if (n == 0) return;
        thread_local std::vector<float> z;
        z.resize(static_cast<size_t>(n * r));
        for (int j = 0; j < b.top_k; ++j) {
            const int64_t entry = s * b.top_k + j;
            if (entry + kAhead < n_entries) {
                prefetch(t.a + expert_of(entry + kAhead), head);
                prefetch(t.b + expert_of(entry + kAhead), head);
            }
            // The expert's r rows of A and of B^T, read in their storage type by the SIMD kernels.
            const Tensor a{t.a + expert_of(entry), t.type, r, d};
            const Tensor bt{t.b + expert_of(entry), t.type, r, d};
            rows(a, b.u + begin * d, n, z.data(), 0, r);  // z[token][rho] = (A_e u_token)[rho]
            const float w = b.weights[entry] * b.scale;
            for (int64_t tok = 0; tok < n; ++tok)
                for (int64_t rho = 0; rho < r; ++rho) axpy(bt, rho, w * z[static_cast<size_t>(tok * r + rho)], out + (begin + tok) * d);
        }
    });
}

void lora_backward_fast(const LoraTables& t, const LoraBatch& b, const float* dout, float* dA, float* dB, ThreadPool& pool) {
    require_arg(t.type == MOME_TENSOR_TYPE_F32, "the LoRA backward takes F32 tables");
    const int64_t d = t.dim, r = t.rank, per_expert = r * d;
    const MatmulRowsFn rows = matmul_rows_best();
    const AxpyRowFn axpy = axpy_row_best();
    // The route entries s * top_k + j of each distinct expert, experts in order of appearance.
    std::unordered_map<int32_t, std::vector<int64_t>> entries_of;
    std::vector<int32_t> experts;
    for (int64_t i = 0; i < b.n_segments * b.top_k; ++i) {
        std::vector<int64_t>& list = entries_of[b.indices[i]];
        if (list.empty()) experts.push_back(b.indices[i]);
        list.push_back(i);
    }
    const auto* A = reinterpret_cast<const float*>(t.a);
    const auto* Bt = reinterpret_cast<const float*>(t.b);
    pool.run(static_cast<int64_t>(experts.size()), [&](int64_t x) {
        const int64_t e = experts[static_cast<size_t>(x)];
        const Tensor a{reinterpret_cast<const uint8_t*>(A + e * per_expert), MOME_TENSOR_TYPE_F32, r, d};
        const Tensor bt{reinterpret_cast<const uint8_t*>(Bt + e * per_expert), MOME_TENSOR_TYPE_F32, r, d};
        float* da = dA + e * per_expert;
        float* db = dB + e * per_expert;
        thread_local std::vector<float> z, dz;
        for (const int64_t i : entries_of.at(static_cast<int32_t>(e))) {
            const int64_t s = i / b.top_k, begin = b.segment_offsets[s], n = b.segment_offsets[s + 1] - begin;
            if (n == 0) continue;
            const float w = b.weights[i] * b.scale;
            const float* u = b.u + begin * d;
            const float* g = dout + begin * d;
            z.resize(static_cast<size_t>(n * r)), dz.resize(static_cast<size_t>(n * r));
            rows(a, u, n, z.data(), 0, r);    // z[token][rho] = (A_e u_token)[rho]
            rows(bt, g, n, dz.data(), 0, r);  // dz[token][rho] = (B_e^T dout_token)[rho]
            const Tensor u_rows{reinterpret_cast<const uint8_t*>(u), MOME_TENSOR_TYPE_F32, n, d};
            const Tensor g_rows{reinterpret_cast<const uint8_t*>(g), MOME_TENSOR_TYPE_F32, n, d};
            for (int64_t rho = 0; rho < r; ++rho)
                for (int64_t tok = 0; tok < n; ++tok) {
                    axpy(g_rows, tok, w * z[static_cast<size_t>(tok * r + rho)], db + rho * d);
                    axpy(u_rows, tok, w * dz[static_cast<size_t>(tok * r + rho)], da + rho * d);
                }
        }
    });
}

}  // namespace mome
