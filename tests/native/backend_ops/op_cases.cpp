// The forward ops' cases: odd sizes, GQA, several sequences with different visible lengths,
// every weight type an op takes.
#include <algorithm>
#include <limits>
#include <numeric>

#include "cases.h"
#include "core/error.h"

namespace backend_ops {

namespace {

using mome::format;
using ll = long long;

constexpr float kEps = 1e-5f;

double type_bytes(const HostTensor& t) { return static_cast<double>(t.bytes->size()); }

OpCase embed_case(mome_tensor_type type, int64_t vocab, int64_t cols, int64_t n, std::mt19937& rng) {
    const HostTensor table = random_tensor(type, vocab, cols, 1.0f, rng);
    std::vector<int32_t> tokens = random_ints(n, 0, static_cast<int32_t>(vocab - 1), rng);
    tokens.front() = 0, tokens.back() = static_cast<int32_t>(vocab - 1);
    OpCase c{Op::Embed, type, format("vocab=%lld d=%lld n=%lld", (ll)vocab, (ll)cols, (ll)n), 0};
    c.bytes = type_bytes(table) / vocab * n + 4.0 * n * cols;
    c.setup = [=](Run& r) {
        const mome::Tensor t = r.tensor(table);
        const int32_t* d_tokens = r.put(tokens);
        float* x = r.poisoned(n * cols);
        r.call = [b = &r.backend, t, d_tokens, n, x] { b->embed(t, d_tokens, n, x); };
        r.output(x, n * cols);
    };
    return c;
}

OpCase add_case(bool scale, int64_t n, std::mt19937& rng) {
    const std::vector<float> x = random_normal(n, rng), y = random_normal(n, rng);
    OpCase c{scale ? Op::Scale : Op::Add, kF32, format("n=%lld", (ll)n), 0};
    c.bytes = (scale ? 8.0 : 12.0) * n, c.flops = static_cast<double>(n);
    c.setup = [=](Run& r) {
        float* dx = r.put(x);
        const float* dy = r.put(y);
        if (scale) r.call = [b = &r.backend, dx, n] { b->scale(dx, 0.75f, n); };
        else r.call = [b = &r.backend, dx, dy, n] { b->add(dx, dy, n); };
        r.output(dx, n);
    };
    return c;
}

// gather: out[i] = x[rows[i]] (rows may repeat); scatter: out[rows[i]] = x[i] over rows
// distinct, into an `out` holding other values.
OpCase rows_case(bool scatter, int64_t n_rows, int64_t table_rows, int64_t d, std::mt19937& rng) {
    std::vector<int32_t> rows(static_cast<size_t>(table_rows));
    std::iota(rows.begin(), rows.end(), 0);
    std::shuffle(rows.begin(), rows.end(), rng);
    rows.resize(static_cast<size_t>(n_rows));
    if (!scatter) rows.back() = rows.front();
    const std::vector<float> x = random_normal((scatter ? n_rows : table_rows) * d, rng), out0 = random_normal(table_rows * d, rng);
    OpCase c{scatter ? Op::ScatterRows : Op::GatherRows, kF32, format("rows=%lld of %lld d=%lld", (ll)n_rows, (ll)table_rows, (ll)d), 0};
    c.bytes = 8.0 * n_rows * d;
    c.setup = [=](Run& r) {
        const float* dx = r.put(x);
        const int32_t* d_rows = r.put(rows);
        float* out = scatter ? r.put(out0) : r.poisoned(n_rows * d);
        if (scatter) r.call = [b = &r.backend, dx, d_rows, n_rows, d, out] { b->scatter_rows(dx, d_rows, n_rows, d, out); };
        else r.call = [b = &r.backend, dx, d_rows, n_rows, d, out] { b->gather_rows(dx, d_rows, n_rows, d, out); };
        r.output(out, (scatter ? table_rows : n_rows) * d);
    };
    return c;
}

// Rows with ties: row 1 has its maximum twice, row 2 is constant (the lowest index wins);
// row 3 holds NaNs past its first element (passed over), row 4 starts with one (index 0), row
// 5 ties +0 and -0 at its top (the first wins); row 0 is all below zero.
OpCase argmax_case(int64_t n, int64_t d, std::mt19937& rng) {
    std::vector<float> x = random_normal(n * d, rng);
    if (n > 2 && d > 2) {
        float* row = x.data() + d;
        const float top = *std::max_element(row, row + d) + 1.0f;
        row[d / 2] = top, row[d - 1] = top;
        std::fill(x.data() + 2 * d, x.data() + 3 * d, 0.5f);
    }
    if (n > 5 && d > 2) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        x[static_cast<size_t>(3 * d + 1)] = nan, x[static_cast<size_t>(3 * d + d - 1)] = nan;
        x[static_cast<size_t>(4 * d)] = nan;
        float* row = x.data() + 5 * d;
        for (int64_t i = 0; i < d; ++i) row[i] = -1.0f - std::abs(row[i]), x[static_cast<size_t>(i)] = -1.0f - std::abs(x[static_cast<size_t>(i)]);
        row[d / 3 + 1] = -0.0f, row[d - 1] = 0.0f;
    }
    OpCase c{Op::ArgmaxRows, kF32, format("n=%lld d=%lld", (ll)n, (ll)d), 0};
    c.bytes = 4.0 * n * d;
    c.setup = [=](Run& r) {
        const float* dx = r.put(x);
        int32_t* out = r.put(std::vector<int32_t>(static_cast<size_t>(n), -1));
        r.call = [b = &r.backend, dx, n, d, out] { b->argmax_rows(dx, n, d, out); };
        r.output(out, n);
    };
    return c;
}

OpCase rms_norm_case(int64_t rows, int64_t d, std::mt19937& rng) {
    const std::vector<float> x = random_normal(rows * d, rng, 2.0f);
    const HostTensor w = random_tensor(kF32, 1, d, 1.0f, rng);
    OpCase c{Op::RmsNorm, kF32, format("rows=%lld d=%lld", (ll)rows, (ll)d), 1e-5};
    c.bytes = 8.0 * rows * d, c.flops = 4.0 * rows * d;
    c.setup = [=](Run& r) {
        const float* dx = r.put(x);
        const mome::Tensor tw = r.tensor(w);
        float* out = r.poisoned(rows * d);
        r.call = [b = &r.backend, dx, tw, rows, out] { b->rms_norm(dx, tw, rows, kEps, out); };
        r.output(out, rows * d);
    };
    return c;
}

}  // namespace

mome::RopeParams rope_case_params(int64_t head_dim, bool factors, Run& r) {
    mome::RopeParams p;
    p.n_rot = head_dim, p.freq_base = 500000.0f, p.freq_scale = 0.5f;
    if (factors) {
        std::vector<float> f(static_cast<size_t>(head_dim / 2));
        for (size_t i = 0; i < f.size(); ++i) f[i] = 1.0f + static_cast<float>(i % 5);
        p.freq_factors = r.put(f);
    }
    return p;
}

namespace {

OpCase rope_case(int64_t heads, int64_t head_dim, bool factors, std::vector<int32_t> pos, std::mt19937& rng) {
    const int64_t rows = static_cast<int64_t>(pos.size()), width = heads * head_dim;
    const std::vector<float> x = random_normal(rows * width, rng);
    OpCase c{Op::Rope, kF32, format("rows=%lld heads=%lld head_dim=%lld factors=%d", (ll)rows, (ll)heads, (ll)head_dim, factors), 1e-5};
    c.bytes = 8.0 * rows * width, c.flops = 6.0 * rows * width;
    c.setup = [=](Run& r) {
        float* dx = r.put(x);
        const int32_t* d_pos = r.put(pos);
        const mome::RopeParams p = rope_case_params(head_dim, factors, r);
        r.call = [b = &r.backend, dx, rows, heads, head_dim, d_pos, p] { b->rope(dx, rows, heads, head_dim, d_pos, p); };
        r.output(dx, rows * width);
    };
    return c;
}

OpCase matmul_case(mome_tensor_type type, int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
    const HostTensor w = random_tensor(type, rows, cols, 0.1f, rng);
    const std::vector<float> x = random_normal(n * cols, rng);
    OpCase c{Op::Matmul, type, format("W %lldx%lld, n=%lld", (ll)rows, (ll)cols, (ll)n), 1e-5};
    c.flops = 2.0 * rows * cols * n, c.bytes = type_bytes(w) + 4.0 * n * (rows + cols);
    c.setup = [=](Run& r) {
        const mome::Tensor tw = r.tensor(w);
        const float* dx = r.put(x);
        float* y = r.poisoned(n * rows);
        r.call = [b = &r.backend, tw, dx, n, y] { b->matmul(tw, dx, n, y); };
        r.output(y, n * rows);
    };
    return c;
}

// Rows into caches holding other values, at distinct random slots of n_seq sequences (one
// sequence: seq_ids null).
OpCase store_kv_case(int64_t n, int64_t kv_dim, int64_t v_dim, int64_t n_seq, int64_t seq_positions, std::mt19937& rng) {
    std::vector<int32_t> slots(static_cast<size_t>(n_seq * seq_positions)), seq_ids, positions;
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
    for (int64_t t = 0; t < n; ++t) {
        seq_ids.push_back(static_cast<int32_t>(slots[t] / seq_positions));
        positions.push_back(static_cast<int32_t>(slots[t] % seq_positions));
    }
    const std::vector<float> k = random_normal(n * kv_dim, rng), v = random_normal(n * v_dim, rng);
    const std::vector<float> k0 = random_normal(n_seq * seq_positions * kv_dim, rng), v0 = random_normal(n_seq * seq_positions * v_dim, rng);
    OpCase c{Op::StoreKv, kF32, format("n=%lld kv_dim=%lld v_dim=%lld sequences=%lld x %lld", (ll)n, (ll)kv_dim, (ll)v_dim, (ll)n_seq, (ll)seq_positions), 0};
    c.bytes = 8.0 * n * (kv_dim + v_dim);
    c.setup = [=](Run& r) {
        const float *dk = r.put(k), *dv = r.put(v);
        const int32_t* d_seq = n_seq > 1 ? r.put(seq_ids) : nullptr;
        const int32_t* d_pos = r.put(positions);
        float *kc = r.put(k0), *vc = r.put(v0);
        r.call = [=, b = &r.backend] { b->store_kv(dk, dv, d_seq, d_pos, n, kv_dim, v_dim, seq_positions, kc, vc); };
        r.output(kc, static_cast<int64_t>(k0.size()));
        r.output(vc, static_cast<int64_t>(v0.size()));
    };
    return c;
}

// n queries over n_seq cached sequences (seq_ids null when one), each seeing a random number of
// positions (the first query 1, the last all).
OpCase attention_case(int64_t n, int64_t n_seq, int64_t seq_positions, int64_t n_head, int64_t n_head_kv, int64_t head_dim,
                      std::mt19937& rng) {
    const int64_t q_dim = n_head * head_dim, kv_dim = n_head_kv * head_dim;
    const std::vector<float> q = random_normal(n * q_dim, rng);
    const std::vector<float> k = random_normal(n_seq * seq_positions * kv_dim, rng), v = random_normal(n_seq * seq_positions * kv_dim, rng);
    const std::vector<int32_t> seq_ids = random_ints(n, 0, static_cast<int32_t>(n_seq - 1), rng);
    std::vector<int32_t> visible = random_ints(n, 1, static_cast<int32_t>(seq_positions), rng);
    visible.front() = 1, visible.back() = static_cast<int32_t>(seq_positions);
    const double seen = std::accumulate(visible.begin(), visible.end(), 0.0);
    OpCase c{Op::Attention, kF32,
             format("n=%lld sequences=%lld x %lld heads=%lld/%lld head_dim=%lld", (ll)n, (ll)n_seq, (ll)seq_positions, (ll)n_head,
                    (ll)n_head_kv, (ll)head_dim),
             1e-5};
    c.flops = 4.0 * seen * q_dim, c.bytes = 8.0 * seen * kv_dim + 8.0 * n * q_dim;
    c.setup = [=](Run& r) {
        const float *dq = r.put(q), *dk = r.put(k), *dv = r.put(v);
        const int32_t* d_seq = n_seq > 1 ? r.put(seq_ids) : nullptr;
        const int32_t* d_vis = r.put(visible);
        const mome::AttentionShape a{n_head, n_head_kv, head_dim, seq_positions};
        float* out = r.poisoned(n * q_dim);
        r.call = [=, b = &r.backend] { b->attention(dq, dk, dv, d_seq, d_vis, n, a, out); };
        r.output(out, n * q_dim);
    };
    return c;
}

OpCase swiglu_case(int64_t n, std::mt19937& rng) {
    const std::vector<float> gate = random_normal(n, rng, 3.0f), up = random_normal(n, rng);
    OpCase c{Op::Swiglu, kF32, format("n=%lld", (ll)n), 1e-5};
    c.bytes = 12.0 * n, c.flops = 5.0 * n;
    c.setup = [=](Run& r) {
        const float *dg = r.put(gate), *du = r.put(up);
        float* out = r.poisoned(n);
        r.call = [b = &r.backend, dg, du, n, out] { b->swiglu(dg, du, n, out); };
        r.output(out, n);
    };
    return c;
}

// The update added to an `out` holding other values.
OpCase lora_apply_case(const LoraInputs& l, std::mt19937& rng) {
    const std::vector<float> out0 = random_normal(l.n_tokens() * l.dim, rng);
    OpCase c{Op::LoraApply, l.a.type, l.shape(), 1e-5};
    c.gpu_tol = 1e-4;
    c.flops = 4.0 * l.n_tokens() * l.top_k * l.rank * l.dim;
    c.bytes = 2.0 * l.indices.size() * l.rank * l.dim * (type_bytes(l.a) / static_cast<double>(l.a.values->size())) + 8.0 * l.n_tokens() * l.dim;
    c.setup = [=](Run& r) {
        const mome::LoraTables t = lora_tables(l, r.tensor(l.a).data, r.tensor(l.b).data, l.a.type);
        const mome::LoraBatch batch = lora_batch(r, l);
        float* out = r.put(out0);
        r.call = [b = &r.backend, t, batch, out] { b->lora_apply(t, batch, out); };
        r.output(out, l.n_tokens() * l.dim, out0);
    };
    return c;
}

const mome_tensor_type kDense[] = {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16};

}  // namespace

std::vector<OpCase> forward_cases(std::mt19937& rng) {
    std::vector<OpCase> c;
    for (mome_tensor_type type : kDense) c.push_back(embed_case(type, 50, 67, 9, rng));
    c.push_back(embed_case(MOME_TENSOR_TYPE_Q8_0, 40, 96, 7, rng));
    c.push_back(embed_case(MOME_TENSOR_TYPE_Q4_0, 40, 64, 7, rng));
    c.push_back(embed_case(MOME_TENSOR_TYPE_Q4_K, 20, 256, 5, rng));
    for (bool scale : {false, true})
        for (int64_t n : {1, 4099}) c.push_back(add_case(scale, n, rng));
    c.push_back(rows_case(false, 7, 11, 33, rng));
    c.push_back(rows_case(true, 7, 11, 33, rng));
    c.push_back(rows_case(true, 1, 1, 5, rng));
    for (int64_t d : {1, 37, 1000}) c.push_back(argmax_case(6, d, rng));
    c.push_back(rms_norm_case(3, 64, rng));
    c.push_back(rms_norm_case(5, 4097, rng));
    for (bool factors : {false, true}) c.push_back(rope_case(3, 16, factors, {0, 1, 17, 900, 4000}, rng));
    c.push_back(rope_case(8, 128, true, {5, 8191}, rng));
    for (mome_tensor_type type : kDense) {
        c.push_back(matmul_case(type, 33, 67, 1, rng));
        c.push_back(matmul_case(type, 130, 96, 5, rng));
        c.push_back(matmul_case(type, 300, 200, 17, rng));
        c.push_back(matmul_case(type, 259, 781, 1, rng));  // decode: odd rows and width, past the prefetch distance
        c.push_back(matmul_case(type, 5, 40, 1, rng));
    }
    c.push_back(matmul_case(MOME_TENSOR_TYPE_Q8_0, 33, 96, 3, rng));
    c.push_back(matmul_case(MOME_TENSOR_TYPE_Q4_0, 70, 64, 9, rng));
    c.push_back(matmul_case(MOME_TENSOR_TYPE_Q4_K, 17, 512, 4, rng));
    c.push_back(matmul_case(MOME_TENSOR_TYPE_Q8_0, 259, 512, 1, rng));  // decode: packed rows
    c.push_back(matmul_case(MOME_TENSOR_TYPE_Q4_K, 33, 1024, 1, rng));
    c.push_back(store_kv_case(5, 12, 12, 3, 6, rng));
    c.push_back(store_kv_case(3, 16, 8, 1, 4, rng));
    c.push_back(attention_case(7, 3, 9, 6, 2, 16, rng));    // GQA, three sequences
    c.push_back(attention_case(5, 1, 40, 4, 4, 32, rng));   // one sequence, no GQA
    c.push_back(attention_case(4, 2, 300, 8, 2, 128, rng)); // Llama's head size
    c.push_back(attention_case(3, 2, 5, 3, 1, 7, rng));     // odd head size, one KV head
    c.push_back(attention_case(1, 1, 200, 12, 4, 64, rng)); // decode: one token, its heads over the threads
    for (int64_t n : {1, 10007}) c.push_back(swiglu_case(n, rng));
    for (mome_tensor_type type : kDense) {
        c.push_back(lora_apply_case(random_lora(type, 64, 100, 3, 4, {1, 3, 0, 5}, false, rng), rng));
        c.push_back(lora_apply_case(random_lora(type, 300, 64, 2, 8, std::vector<int64_t>(6, 1), false, rng), rng));
        c.push_back(lora_apply_case(random_lora(type, 8, 96, 4, 8, {11}, true, rng), rng));
    }
    return c;
}

// A couple of sizes per op, about a Llama-3-8B layer's (n_embd 4096, 32/8 heads of 128).
std::vector<OpCase> forward_perf_cases(std::mt19937& rng) {
    std::vector<OpCase> c;
    for (int64_t n : {1, 64}) {
        c.push_back(embed_case(MOME_TENSOR_TYPE_BF16, 32000, 4096, n, rng));
        c.push_back(add_case(false, n * 4096, rng));
        c.push_back(add_case(true, n * 4096, rng));
        c.push_back(rows_case(false, n, 64, 4096, rng));
        c.push_back(argmax_case(n, 128256, rng));
        c.push_back(rms_norm_case(n, 4096, rng));
        c.push_back(rope_case(32, 128, true, random_ints(n, 0, 8000, rng), rng));
        for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_BF16, MOME_TENSOR_TYPE_Q8_0, MOME_TENSOR_TYPE_Q4_K})
            c.push_back(matmul_case(type, 4096, 4096, n, rng));
        c.push_back(store_kv_case(n, 1024, 1024, 1, 2048, rng));
        c.push_back(attention_case(n, 1, 2048, 32, 8, 128, rng));
        c.push_back(swiglu_case(n * 14336, rng));
        c.push_back(lora_apply_case(random_lora(MOME_TENSOR_TYPE_BF16, 1024, 4096, 4, 32, std::vector<int64_t>(static_cast<size_t>(n), 1), false, rng), rng));
    }
    return c;
}

}  // namespace backend_ops
