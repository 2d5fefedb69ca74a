// The backward ops' cases, each with the forward op it differentiates. Outputs an op
// overwrites start as NaN; outputs it accumulates into start from random values in mode test
// (compared minus those values) and from zero in mode grad.
#include <numeric>

#include "cases.h"
#include "core/error.h"

namespace backend_ops {

namespace {

using mome::format;
using ll = long long;

constexpr float kEps = 1e-5f;

// F32 values as a weight on run's device (kept alive by the run, unlike a temporary HostTensor).
mome::Tensor device_f32(Run& r, const std::vector<float>& values, int64_t rows, int64_t cols) {
    return mome::Tensor{reinterpret_cast<const uint8_t*>(r.put(values)), kF32, rows, cols, r.backend.device()};
}

// The starting values of an accumulated output of n floats.
std::vector<float> prior(bool random, int64_t n, std::mt19937& rng) {
    return random ? random_normal(n, rng) : std::vector<float>(static_cast<size_t>(n), 0.0f);
}

GradCase rms_norm_backward_case(int64_t rows, int64_t d, std::mt19937& rng) {
    GradCase g;
    const HostTensor w = random_tensor(kF32, 1, d, 1.0f, rng);
    g.names = {"x"};
    g.inputs = {random_normal(rows * d, rng, 2.0f)};
    g.r = random_normal(rows * d, rng);
    g.forward = [w, rows, d](Run& r, const Inputs& in) {
        const float* x = r.put(in[0]);
        const mome::Tensor tw = r.tensor(w);
        float* y = r.poisoned(rows * d);
        r.call = [b = &r.backend, x, tw, rows, y] { b->rms_norm(x, tw, rows, kEps, y); };
        r.output(y, rows * d);
    };
    g.grad = OpCase{Op::RmsNormBackward, kF32, format("rows=%lld d=%lld", (ll)rows, (ll)d), 1e-5};
    g.grad.bytes = 12.0 * rows * d, g.grad.flops = 8.0 * rows * d;
    g.grad.setup = [x = g.inputs[0], dy = g.r, w, rows, d](Run& r) {
        const float *dx_in = r.put(x), *d_dy = r.put(dy);
        const mome::Tensor tw = r.tensor(w);
        float* dx = r.poisoned(rows * d);
        r.call = [b = &r.backend, dx_in, tw, d_dy, rows, dx] { b->rms_norm_backward(dx_in, tw, d_dy, rows, kEps, dx); };
        r.output(dx, rows * d);
    };
    g.test = g.grad;
    return g;
}

// dX += dY W with W of `type`; the forward is X W^T with W's values as F32 (the
// straight-through view the backward takes of rounded or quantized weights).
GradCase matmul_backward_case(mome_tensor_type type, int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
    GradCase g;
    const HostTensor w = random_tensor(type, rows, cols, 0.3f, rng);
    const HostTensor w32 = f32_tensor(*w.values, rows, cols);
    g.names = {"X"};
    g.inputs = {random_normal(n * cols, rng)};
    g.r = random_normal(n * rows, rng);
    g.forward = [w32, n, rows, cols](Run& r, const Inputs& in) {
        const mome::Tensor tw = r.tensor(w32);
        const float* x = r.put(in[0]);
        float* y = r.poisoned(n * rows);
        r.call = [b = &r.backend, tw, x, n, y] { b->matmul(tw, x, n, y); };
        r.output(y, n * rows);
    };
    auto make = [&](bool random_prior) {
        OpCase c{Op::MatmulBackwardInput, type, format("W %lldx%lld, n=%lld", (ll)rows, (ll)cols, (ll)n), 1e-5};
        c.gpu_tol = type == kF32 ? 1e-5 : 1e-2;  // the CUDA backward rounds dY to W's type for cuBLAS
        c.flops = 2.0 * rows * cols * n, c.bytes = static_cast<double>(w.bytes->size()) + 4.0 * n * (rows + 2 * cols);
        c.setup = [w, dy = g.r, dx0 = prior(random_prior, n * cols, rng), n, cols](Run& r) {
            const mome::Tensor tw = r.tensor(w);
            const float* d_dy = r.put(dy);
            float* dx = r.put(dx0);
            r.call = [b = &r.backend, tw, d_dy, n, dx] { b->matmul_backward_input(tw, d_dy, n, dx); };
            r.output(dx, n * cols, dx0);
        };
        return c;
    };
    g.test = make(true), g.grad = make(false);
    return g;
}

GradCase rope_backward_case(int64_t heads, int64_t head_dim, bool factors, std::vector<int32_t> pos, std::mt19937& rng) {
    GradCase g;
    const int64_t rows = static_cast<int64_t>(pos.size()), width = heads * head_dim;
    g.names = {"x"};
    g.inputs = {random_normal(rows * width, rng)};
    g.r = random_normal(rows * width, rng);
    g.forward = [=](Run& r, const Inputs& in) {
        float* x = r.put(in[0]);
        const int32_t* d_pos = r.put(pos);
        const mome::RopeParams p = rope_case_params(head_dim, factors, r);
        r.call = [=, b = &r.backend] { b->rope(x, rows, heads, head_dim, d_pos, p); };
        r.output(x, rows * width);
    };
    g.grad = OpCase{Op::RopeBackward, kF32, format("rows=%lld heads=%lld head_dim=%lld factors=%d", (ll)rows, (ll)heads, (ll)head_dim, factors),
                    1e-5};
    g.grad.bytes = 8.0 * rows * width, g.grad.flops = 6.0 * rows * width;
    g.grad.setup = [=, dy = g.r](Run& r) {
        float* dx = r.put(dy);
        const int32_t* d_pos = r.put(pos);
        const mome::RopeParams p = rope_case_params(head_dim, factors, r);
        r.call = [=, b = &r.backend] { b->rope_backward(dx, rows, heads, head_dim, d_pos, p); };
        r.output(dx, rows * width);
    };
    g.test = g.grad;
    return g;
}

// Queries of one sequence over its cache, each seeing `visible[t]` positions.
GradCase attention_backward_case(int64_t seq_positions, int64_t n_head, int64_t n_head_kv, int64_t head_dim, std::vector<int32_t> visible,
                                 std::mt19937& rng) {
    GradCase g;
    const int64_t n = static_cast<int64_t>(visible.size()), q_dim = n_head * head_dim, cache = seq_positions * n_head_kv * head_dim;
    const mome::AttentionShape a{n_head, n_head_kv, head_dim, seq_positions};
    g.names = {"q", "k", "v"};
    g.inputs = {random_normal(n * q_dim, rng), random_normal(cache, rng), random_normal(cache, rng)};
    g.r = random_normal(n * q_dim, rng);
    g.forward = [=](Run& r, const Inputs& in) {
        const float *q = r.put(in[0]), *k = r.put(in[1]), *v = r.put(in[2]);
        const int32_t* d_vis = r.put(visible);
        float* out = r.poisoned(n * q_dim);
        r.call = [=, b = &r.backend] { b->attention(q, k, v, nullptr, d_vis, n, a, out); };
        r.output(out, n * q_dim);
    };
    const double seen = std::accumulate(visible.begin(), visible.end(), 0.0);
    auto make = [&](bool random_prior) {
        OpCase c{Op::AttentionBackward, kF32,
                 format("n=%lld positions=%lld heads=%lld/%lld head_dim=%lld", (ll)n, (ll)seq_positions, (ll)n_head, (ll)n_head_kv, (ll)head_dim),
                 1e-5};
        c.flops = 10.0 * seen * q_dim, c.bytes = 16.0 * seen * n_head_kv * head_dim + 12.0 * n * q_dim;
        c.setup = [=, in = g.inputs, dout = g.r, dk0 = prior(random_prior, cache, rng), dv0 = prior(random_prior, cache, rng)](Run& r) {
            const float *q = r.put(in[0]), *k = r.put(in[1]), *v = r.put(in[2]), *d_out = r.put(dout);
            const int32_t* d_vis = r.put(visible);
            float *dq = r.poisoned(n * q_dim), *dk = r.put(dk0), *dv = r.put(dv0);
            r.call = [=, b = &r.backend] { b->attention_backward(q, k, v, d_vis, n, a, d_out, dq, dk, dv); };
            r.output(dq, n * q_dim);
            r.output(dk, cache, dk0);
            r.output(dv, cache, dv0);
        };
        return c;
    };
    g.test = make(true), g.grad = make(false);
    return g;
}

GradCase swiglu_backward_case(int64_t n, std::mt19937& rng) {
    GradCase g;
    g.names = {"gate", "up"};
    g.inputs = {random_normal(n, rng, 3.0f), random_normal(n, rng)};
    g.r = random_normal(n, rng);
    g.forward = [n](Run& r, const Inputs& in) {
        const float *gate = r.put(in[0]), *up = r.put(in[1]);
        float* out = r.poisoned(n);
        r.call = [b = &r.backend, gate, up, n, out] { b->swiglu(gate, up, n, out); };
        r.output(out, n);
    };
    g.grad = OpCase{Op::SwigluBackward, kF32, format("n=%lld", (ll)n), 1e-5};
    g.grad.bytes = 20.0 * n, g.grad.flops = 10.0 * n;
    g.grad.setup = [in = g.inputs, dout = g.r, n](Run& r) {
        const float *gate = r.put(in[0]), *up = r.put(in[1]), *d_out = r.put(dout);
        float *dgate = r.poisoned(n), *dup = r.poisoned(n);
        r.call = [=, b = &r.backend] { b->swiglu_backward(gate, up, d_out, n, dgate, dup); };
        r.output(dgate, n);
        r.output(dup, n);
    };
    g.test = g.grad;
    return g;
}

// The op gives each row's loss and its gradient: the forward is the loss, and
// dL/dlogits[t] = r[t] * dlogits[t].
GradCase cross_entropy_case(int64_t n, int64_t vocab, float stddev, std::mt19937& rng) {
    GradCase g;
    const std::vector<int32_t> targets = random_ints(n, 0, static_cast<int32_t>(vocab - 1), rng);
    g.names = {"logits"};
    g.inputs = {random_normal(n * vocab, rng, stddev)};
    g.r = random_normal(n, rng);
    auto setup = [=](Run& r, const std::vector<float>& logits, bool loss_only) {
        const float* d_logits = r.put(logits);
        const int32_t* d_targets = r.put(targets);
        float *dlogits = r.poisoned(n * vocab), *loss = r.poisoned(n);
        r.call = [=, b = &r.backend] { b->cross_entropy_backward(d_logits, d_targets, n, vocab, dlogits, loss); };
        if (!loss_only) r.output(dlogits, n * vocab);
        r.output(loss, n);
    };
    g.forward = [setup](Run& r, const Inputs& in) { setup(r, in[0], true); };
    g.grad = OpCase{Op::CrossEntropyBackward, kF32, format("n=%lld vocab=%lld", (ll)n, (ll)vocab), 1e-5};
    g.grad.bytes = 8.0 * n * vocab, g.grad.flops = 5.0 * n * vocab;
    g.grad.setup = [setup, logits = g.inputs[0]](Run& r) { setup(r, logits, false); };
    g.test = g.grad;
    g.to_gradients = [r = g.r, vocab](const Outputs& out) {
        std::vector<float> d = out.floats[0];
        for (size_t i = 0; i < d.size(); ++i) d[i] *= r[i / static_cast<size_t>(vocab)];
        return Inputs{d};
    };
    return g;
}

// dA and dB of the LoRA update over F32 tables; the forward adds it to zeros.
GradCase lora_backward_case(const LoraInputs& l, std::mt19937& rng) {
    GradCase g;
    const int64_t table = l.n_experts * l.rank * l.dim, n = l.n_tokens() * l.dim;
    g.names = {"A", "B"};
    g.inputs = {*l.a.values, *l.b.values};
    g.r = random_normal(n, rng);
    g.forward = [l, n](Run& r, const Inputs& in) {
        const float *a = r.put(in[0]), *bt = r.put(in[1]);
        const mome::LoraTables t = lora_tables(l, reinterpret_cast<const uint8_t*>(a), reinterpret_cast<const uint8_t*>(bt), kF32);
        const mome::LoraBatch batch = lora_batch(r, l);
        float* out = r.put(std::vector<float>(static_cast<size_t>(n), 0.0f));
        r.call = [b = &r.backend, t, batch, out] { b->lora_apply(t, batch, out); };
        r.output(out, n);
    };
    auto make = [&](bool random_prior) {
        OpCase c{Op::LoraBackward, kF32, l.shape(), 1e-5};
        c.flops = 8.0 * l.n_tokens() * l.top_k * l.rank * l.dim;
        c.bytes = 16.0 * l.indices.size() * l.rank * l.dim + 8.0 * n;
        c.setup = [l, table, dout = g.r, da0 = prior(random_prior, table, rng), db0 = prior(random_prior, table, rng)](Run& r) {
            const mome::LoraTables t = lora_tables(l, r.tensor(l.a).data, r.tensor(l.b).data, kF32);
            const mome::LoraBatch batch = lora_batch(r, l);
            const float* d_out = r.put(dout);
            float *da = r.put(da0), *db = r.put(db0);
            r.call = [b = &r.backend, t, batch, d_out, da, db] { b->lora_backward(t, batch, d_out, da, db); };
            r.output(da, table, da0);
            r.output(db, table, db0);
        };
        return c;
    };
    g.test = make(true), g.grad = make(false);
    return g;
}

// dW += dY^T X: the forward is X W^T as a function of W (F32).
GradCase matmul_backward_weight_case(int64_t rows, int64_t cols, int64_t n, std::mt19937& rng) {
    GradCase g;
    const std::vector<float> x = random_normal(n * cols, rng);
    g.names = {"W"};
    g.inputs = {random_normal(rows * cols, rng, 0.3f)};
    g.r = random_normal(n * rows, rng);
    g.forward = [x, n, rows, cols](Run& r, const Inputs& in) {
        const mome::Tensor tw = device_f32(r, in[0], rows, cols);
        const float* d_x = r.put(x);
        float* y = r.poisoned(n * rows);
        r.call = [b = &r.backend, tw, d_x, n, y] { b->matmul(tw, d_x, n, y); };
        r.output(y, n * rows);
    };
    auto make = [&](bool random_prior) {
        OpCase c{Op::MatmulBackwardWeight, kF32, format("W %lldx%lld, n=%lld", (ll)rows, (ll)cols, (ll)n), 1e-5};
        c.flops = 2.0 * rows * cols * n, c.bytes = 8.0 * rows * cols + 4.0 * n * (rows + cols);
        c.setup = [x, dy = g.r, dw0 = prior(random_prior, rows * cols, rng), n, rows, cols](Run& r) {
            const float *d_x = r.put(x), *d_dy = r.put(dy);
            float* dw = r.put(dw0);
            r.call = [b = &r.backend, d_dy, d_x, n, rows, cols, dw] { b->matmul_backward_weight(d_dy, d_x, n, rows, cols, dw); };
            r.output(dw, rows * cols, dw0);
        };
        return c;
    };
    g.test = make(true), g.grad = make(false);
    return g;
}

// dweight of rms_norm: the forward as a function of its weight.
GradCase rms_norm_backward_weight_case(int64_t rows, int64_t d, std::mt19937& rng) {
    GradCase g;
    const std::vector<float> x = random_normal(rows * d, rng, 2.0f);
    g.names = {"weight"};
    g.inputs = {random_normal(d, rng)};
    g.r = random_normal(rows * d, rng);
    g.forward = [x, rows, d](Run& r, const Inputs& in) {
        const mome::Tensor tw = device_f32(r, in[0], 1, d);
        const float* d_x = r.put(x);
        float* y = r.poisoned(rows * d);
        r.call = [b = &r.backend, d_x, tw, rows, y] { b->rms_norm(d_x, tw, rows, kEps, y); };
        r.output(y, rows * d);
    };
    auto make = [&](bool random_prior) {
        OpCase c{Op::RmsNormBackwardWeight, kF32, format("rows=%lld d=%lld", (ll)rows, (ll)d), 1e-5};
        c.flops = 5.0 * rows * d, c.bytes = 8.0 * rows * d + 8.0 * d;
        c.setup = [x, dy = g.r, dw0 = prior(random_prior, d, rng), rows, d](Run& r) {
            const float *d_x = r.put(x), *d_dy = r.put(dy);
            float* dw = r.put(dw0);
            r.call = [b = &r.backend, d_x, d_dy, rows, d, dw] { b->rms_norm_backward_weight(d_x, d_dy, rows, d, kEps, dw); };
            r.output(dw, d, dw0);
        };
        return c;
    };
    g.test = make(true), g.grad = make(false);
    return g;
}

// dtable of embed over tokens that repeat: the forward as a function of its F32 table.
GradCase embed_backward_case(int64_t vocab, int64_t d, std::vector<int32_t> tokens, std::mt19937& rng) {
    GradCase g;
    const int64_t n = static_cast<int64_t>(tokens.size());
    g.names = {"table"};
    g.inputs = {random_normal(vocab * d, rng)};
    g.r = random_normal(n * d, rng);
    g.forward = [tokens, vocab, n, d](Run& r, const Inputs& in) {
        const mome::Tensor table = device_f32(r, in[0], vocab, d);
        const int32_t* d_tokens = r.put(tokens);
        float* x = r.poisoned(n * d);
        r.call = [b = &r.backend, table, d_tokens, n, x] { b->embed(table, d_tokens, n, x); };
        r.output(x, n * d);
    };
    auto make = [&](bool random_prior) {
        OpCase c{Op::EmbedBackward, kF32, format("vocab=%lld d=%lld n=%lld", (ll)vocab, (ll)d, (ll)n), 1e-6};
        c.flops = 1.0 * n * d, c.bytes = 12.0 * n * d;
        c.setup = [tokens, dx = g.r, dt0 = prior(random_prior, vocab * d, rng), vocab, n, d](Run& r) {
            const float* d_dx = r.put(dx);
            const int32_t* d_tokens = r.put(tokens);
            float* dt = r.put(dt0);
            r.call = [b = &r.backend, d_dx, d_tokens, n, d, dt] { b->embed_backward(d_dx, d_tokens, n, d, dt); };
            r.output(dt, vocab * d, dt0);
        };
        return c;
    };
    g.test = make(true), g.grad = make(false);
    return g;
}

}  // namespace

std::vector<GradCase> backward_cases(std::mt19937& rng) {
    std::vector<GradCase> c;
    c.push_back(rms_norm_backward_case(3, 37, rng));
    c.push_back(rms_norm_backward_case(2, 300, rng));
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_F32, 13, 67, 3, rng));
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_F16, 21, 40, 2, rng));
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_BF16, 130, 96, 5, rng));
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_F32, 37, 300, 11, rng));  // token and column blocks with tails
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_F16, 29, 129, 17, rng));
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_Q8_0, 9, 64, 3, rng));
    c.push_back(matmul_backward_case(MOME_TENSOR_TYPE_Q4_K, 5, 256, 2, rng));
    c.push_back(rope_backward_case(2, 16, false, {0, 7, 3000}, rng));
    c.push_back(rope_backward_case(3, 8, true, {1, 12}, rng));
    c.push_back(attention_backward_case(6, 4, 2, 8, {1, 3, 6, 4, 2}, rng));  // GQA, visible lengths in any order
    c.push_back(attention_backward_case(5, 2, 2, 12, {1, 2, 3, 4, 5}, rng));  // causal, as tuning runs it
    c.push_back(attention_backward_case(4, 3, 1, 7, {4, 1, 2}, rng));         // odd head size, one KV head
    c.push_back(swiglu_backward_case(101, rng));
    c.push_back(swiglu_backward_case(7, rng));
    c.push_back(cross_entropy_case(3, 37, 3.0f, rng));
    c.push_back(cross_entropy_case(2, 3, 1.0f, rng));
    c.push_back(lora_backward_case(random_lora(kF32, 3, 12, 2, 3, {6}, true, rng), rng));          // route order (CUDA's form)
    c.push_back(lora_backward_case(random_lora(kF32, 7, 10, 2, 3, {5}, false, rng), rng));         // distinct experts, one segment
    c.push_back(lora_backward_case(random_lora(kF32, 5, 9, 3, 2, {2, 1, 0, 3}, false, rng), rng));  // several segments
    c.push_back(matmul_backward_weight_case(13, 67, 3, rng));
    c.push_back(matmul_backward_weight_case(21, 9, 40, rng));  // more tokens than rows (chunks of rows on cpu-fast)
    c.push_back(rms_norm_backward_weight_case(3, 37, rng));
    c.push_back(rms_norm_backward_weight_case(5, 300, rng));
    c.push_back(embed_backward_case(7, 12, {3, 0, 3, 6, 3}, rng));  // repeated tokens add
    return c;
}

std::vector<GradCase> backward_perf_cases(std::mt19937& rng) {
    std::vector<GradCase> c;
    for (int64_t n : {1, 64}) {
        c.push_back(rms_norm_backward_case(n, 4096, rng));
        for (mome_tensor_type type : {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_BF16}) c.push_back(matmul_backward_case(type, 4096, 4096, n, rng));
        c.push_back(rope_backward_case(32, 128, true, random_ints(n, 0, 8000, rng), rng));
        std::vector<int32_t> visible(static_cast<size_t>(n));
        std::iota(visible.begin(), visible.end(), 1);
        c.push_back(attention_backward_case(n, 32, 8, 128, visible, rng));
        c.push_back(swiglu_backward_case(n * 14336, rng));
        c.push_back(cross_entropy_case(n, 128256, 3.0f, rng));
        c.push_back(lora_backward_case(random_lora(kF32, 32, 4096, 4, 32, {n}, true, rng), rng));
        c.push_back(matmul_backward_weight_case(4096, 4096, n, rng));
    }
    return c;
}

}  // namespace backend_ops
