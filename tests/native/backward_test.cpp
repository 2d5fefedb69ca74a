// Every backward operator against finite differences of an independent double-precision
// forward written here (or, for the linear ones, the adjoint identity <dy, Jx> = <J^T dy, x>).
#include <cmath>
#include <functional>
#include <gtest/gtest.h>
#include <random>
#include <vector>

#include "cpu/ops_backward.h"
#include "test_seed.h"

using namespace mome;

namespace {

// Reseeded by each test (MOME_TEST_RESEED), so a test's inputs do not depend on which ran before.
std::mt19937 rng;

std::vector<float> randn(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> normal(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng);
    return v;
}

// Central differences of f at every element of x (double precision, step h).
std::vector<double> numeric_grad(std::vector<double> x, const std::function<double(const std::vector<double>&)>& f, double h = 1e-6) {
    std::vector<double> g(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const double keep = x[i];
        x[i] = keep + h;
        const double up = f(x);
        x[i] = keep - h;
        const double down = f(x);
        x[i] = keep;
        g[i] = (up - down) / (2 * h);
    }
    return g;
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol, const char* what) {
    ASSERT_EQ(got.size(), want.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
    // A vanishing reference would let a zeroed gradient pass the relative check.
    ASSERT_GT(std::sqrt(den / static_cast<double>(got.size())), 1e-3) << what << ": the finite-difference gradient vanishes, the check would prove nothing";
    EXPECT_LT(std::sqrt(num / den), tol) << what;
}

double dotd(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

}  // namespace

TEST(Backward, RmsNorm) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t d = 13;
    const float eps = 1e-5f;
    auto x = randn(d), w = randn(d), c = randn(d);
    auto f = [&](const std::vector<double>& xv) {
        double ss = 0;
        for (double v : xv) ss += v * v;
        const double s = 1.0 / std::sqrt(ss / d + eps);
        double out = 0;
        for (int64_t i = 0; i < d; ++i) out += c[i] * xv[i] * s * w[i];
        return out;
    };
    std::vector<float> dx(d);
    rms_norm_backward(x.data(), w.data(), d, eps, c.data(), dx.data());
    expect_close(dx, numeric_grad(to_double(x), f), 1e-6, "rms_norm");
}

TEST(Backward, SwiGlu) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t n = 17;
    auto g = randn(n, 2.0f), u = randn(n), c = randn(n);
    std::vector<float> dg(n), du(n);
    swiglu_backward(g.data(), u.data(), c.data(), n, dg.data(), du.data());
    auto fg = [&](const std::vector<double>& gv) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += c[i] * gv[i] / (1 + std::exp(-gv[i])) * u[i];
        return s;
    };
    auto fu = [&](const std::vector<double>& uv) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += c[i] * g[i] / (1 + std::exp(-static_cast<double>(g[i]))) * uv[i];
        return s;
    };
    expect_close(dg, numeric_grad(to_double(g), fg), 1e-5, "swiglu gate");
    expect_close(du, numeric_grad(to_double(u), fu), 1e-5, "swiglu up");
}

TEST(Backward, RopeIsTheAdjointOfTheForwardRotation) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t heads = 3, hd = 16;
    std::vector<float> factors = {1, 2, 3, 4, 5, 6, 7, 8};
    RopeParams p;
    p.n_rot = hd;
    p.freq_base = 500000;
    p.freq_scale = 0.5f;
    p.freq_factors = factors.data();
    for (int32_t pos : {0, 5, 123}) {
        auto x = randn(heads * hd), dy = randn(heads * hd);
        auto rx = x;
        rope_norm_ref(rx.data(), heads, hd, pos, p);
        auto rt_dy = dy;
        rope_norm_backward(rt_dy.data(), heads, hd, pos, p);
        const double forward = dotd(to_double(dy), to_double(rx));
        ASSERT_GT(std::fabs(forward), 1e-2) << pos << ": <dy, Rx> vanishes, a zeroed backward would pass";
        EXPECT_NEAR(forward, dotd(to_double(rt_dy), to_double(x)), 1e-4) << pos;
    }
}

TEST(Backward, MatmulInputIsTheAdjoint) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t rows = 9, cols = 14, n = 3;
    auto w = randn(rows * cols), x = randn(n * cols), dy = randn(n * rows);
    const Tensor W{reinterpret_cast<const uint8_t*>(w.data()), MOME_TENSOR_TYPE_F32, rows, cols};
    std::vector<float> y(n * rows), dx(n * cols, 0.0f);
    matmul_ref(W, x.data(), n, y.data());
    matmul_backward_input(W, dy.data(), n, dx.data());
    const double forward = dotd(to_double(dy), to_double(y));
    ASSERT_GT(std::fabs(forward), 1e-2) << "<dy, Wx> vanishes, a zeroed backward would pass";
    EXPECT_NEAR(forward, dotd(to_double(dx), to_double(x)), 1e-3);
}

TEST(Backward, AttentionWithGqa) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t heads = 4, kv_heads = 2, hd = 5, positions = 6, stride = kv_heads * hd;
    auto q = randn(heads * hd), k = randn(positions * stride), v = randn(positions * stride), c = randn(heads * hd);
    // Independent double forward: per head, softmax(q.k / sqrt(hd)) over all positions.
    auto forward = [&](const std::vector<double>& qv, const std::vector<double>& kv, const std::vector<double>& vv) {
        double out = 0;
        for (int64_t h = 0; h < heads; ++h) {
            const int64_t g = h / (heads / kv_heads);
            std::vector<double> s(positions);
            double m = -INFINITY, z = 0;
            for (int64_t j = 0; j < positions; ++j) {
                double dot = 0;
                for (int64_t i = 0; i < hd; ++i) dot += qv[h * hd + i] * kv[j * stride + g * hd + i];
                s[j] = dot / std::sqrt(static_cast<double>(hd));
                m = std::max(m, s[j]);
            }
            for (double& x : s) z += (x = std::exp(x - m));
            for (int64_t i = 0; i < hd; ++i) {
                double o = 0;
                for (int64_t j = 0; j < positions; ++j) o += s[j] / z * vv[j * stride + g * hd + i];
                out += c[h * hd + i] * o;
            }
        }
        return out;
    };
    std::vector<float> dq(heads * hd), dk(positions * stride, 0.0f), dv(positions * stride, 0.0f);
    attention_backward(q.data(), k.data(), v.data(), positions, heads, kv_heads, hd, c.data(), dq.data(), dk.data(), dv.data());
    const auto qd = to_double(q), kd = to_double(k), vd = to_double(v);
    expect_close(dq, numeric_grad(qd, [&](const std::vector<double>& x) { return forward(x, kd, vd); }), 1e-6, "dq");
    expect_close(dk, numeric_grad(kd, [&](const std::vector<double>& x) { return forward(qd, x, vd); }), 1e-6, "dk");
    expect_close(dv, numeric_grad(vd, [&](const std::vector<double>& x) { return forward(qd, kd, x); }), 1e-6, "dv");
}

// The attention backward split by KV head (as the fast CPU backend runs it, one KV head per
// thread, tokens in order) gives the whole backward's floats to the bit.
TEST(Backward, AttentionByKvHeadEqualsTheWholeBackward) {
    const int64_t n_head = 8, n_head_kv = 2, head_dim = 16, n = 7, stride = n_head_kv * head_dim, q_dim = n_head * head_dim;
    MOME_TEST_RNG(rng, 913);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const auto random = [&](int64_t count) {
        std::vector<float> v(static_cast<size_t>(count));
        for (float& x : v) x = normal(rng);
        return v;
    };
    const std::vector<float> q = random(n * q_dim), k = random(n * stride), v = random(n * stride), dout = random(n * q_dim);
    std::vector<float> dq(q.size()), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
    std::vector<float> dq2(q.size()), dk2(k.size(), 0.0f), dv2(v.size(), 0.0f);
    for (int64_t t = 0; t < n; ++t)
        attention_backward(q.data() + t * q_dim, k.data(), v.data(), t + 1, n_head, n_head_kv, head_dim, dout.data() + t * q_dim,
                           dq.data() + t * q_dim, dk.data(), dv.data());
    for (int64_t kvh = n_head_kv - 1; kvh >= 0; --kvh)  // the KV heads in any order
        for (int64_t t = 0; t < n; ++t)
            attention_backward_heads(q.data() + t * q_dim, k.data(), v.data(), t + 1, n_head, n_head_kv, head_dim, dout.data() + t * q_dim,
                                     dq2.data() + t * q_dim, dk2.data(), dv2.data(), kvh, kvh + 1);
    EXPECT_EQ(dq, dq2);
    EXPECT_EQ(dk, dk2);
    EXPECT_EQ(dv, dv2);
    EXPECT_NE(dk, std::vector<float>(dk.size(), 0.0f));
}

TEST(Backward, CrossEntropy) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t n = 11;
    auto logits = randn(n, 3.0f);
    std::vector<float> g(n);
    const double loss = cross_entropy_backward(logits.data(), n, 4, g.data());
    auto f = [&](const std::vector<double>& l) {
        double m = -INFINITY, z = 0;
        for (double x : l) m = std::max(m, x);
        for (double x : l) z += std::exp(x - m);
        return -(l[4] - m - std::log(z));
    };
    EXPECT_NEAR(loss, f(to_double(logits)), 1e-6);
    expect_close(g, numeric_grad(to_double(logits), f), 1e-6, "cross entropy");
}

TEST(Backward, GroupedLora) {
    MOME_TEST_RESEED(rng, 123);
    const int64_t experts = 5, d = 6, tokens = 3;
    const int32_t r = 2, k = 2;
    auto a = randn(experts * r * d), bt = randn(experts * r * d), u = randn(tokens * d), c = randn(tokens * d);
    const int64_t offsets[] = {0, 2, 3};
    const int32_t idx[] = {1, 3, 4, 1};
    const float w[] = {0.7f, 0.3f, 0.4f, 0.6f};
    const float scale = 1.5f;
    auto forward = [&](const std::vector<double>& av, const std::vector<double>& bv, const std::vector<double>& uv) {
        double out = 0;
        for (int64_t s = 0; s < 2; ++s)
            for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t)
                for (int j = 0; j < k; ++j) {
                    const int64_t e = idx[s * k + j];
                    for (int64_t rho = 0; rho < r; ++rho) {
                        double z = 0;
                        for (int64_t i = 0; i < d; ++i) z += av[(e * r + rho) * d + i] * uv[t * d + i];
                        for (int64_t i = 0; i < d; ++i) out += c[t * d + i] * scale * w[s * k + j] * bv[(e * r + rho) * d + i] * z;
                    }
                }
        return out;
    };
    const LoraTables tables{MOME_TENSOR_TYPE_F32, experts, d, r, reinterpret_cast<const uint8_t*>(a.data()),
                            reinterpret_cast<const uint8_t*>(bt.data())};
    const LoraBatch batch{u.data(), tokens, offsets, 2, idx, w, k, scale};
    std::vector<float> da(a.size(), 0.0f), db(bt.size(), 0.0f), du(u.size(), 0.0f);
    lora_backward(tables, batch, c.data(), da.data(), db.data(), du.data());
    const auto ad = to_double(a), bd = to_double(bt), ud = to_double(u);
    expect_close(da, numeric_grad(ad, [&](const std::vector<double>& x) { return forward(x, bd, ud); }), 1e-6, "dA");
    expect_close(db, numeric_grad(bd, [&](const std::vector<double>& x) { return forward(ad, x, ud); }), 1e-6, "dB");
    expect_close(du, numeric_grad(ud, [&](const std::vector<double>& x) { return forward(ad, bd, x); }), 1e-6, "du");
}
