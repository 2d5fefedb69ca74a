// mome_backend_ops: every op of backend/backend.h, forward and backward, on every backend
// present, against cpu-ref (as ggml's test-backend-ops).
//   mome_backend_ops test [--seed N] [--op NAME] [--backend NAME]
//     each op on fresh random inputs at several shapes and types on cpu-fast (always) and
//     cuda (when built and a device exists), compared with cpu-ref by normalised error
//     |got - want| / |want| (integer outputs and copies: equal); then, with a CUDA device, the
//     cases through the C ABI (router, grouped LoRA, whole sessions, a tuning step).
//   mome_backend_ops grad [...]
//     cpu-ref's backward ops against central finite differences of its forward ops, and the
//     other backends' backward ops against cpu-ref's.
//   mome_backend_ops perf [...]
//     each op's median time on each backend at a couple of sizes; with CUDA, whole sessions.
// Exits 0 when everything run passed, 1 on any failure, 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cases.h"
#include "core/error.h"
#include "cpu/thread_pool.h"

using namespace backend_ops;

namespace {

struct Options {
    std::string mode = "test", op, backend;
    unsigned seed = 0;
};

struct Tally {
    int passed = 0, failed = 0, skipped = 0;
};

// The backends under test beside cpu-ref: cpu-fast, and cuda on the first CUDA device.
struct Backends {
    mome::ThreadPool pool{3};  // an odd count, so that rows split unevenly
    std::unique_ptr<Backend> ref = mome::make_cpu_ref_backend();
    std::vector<std::unique_ptr<Backend>> tested;
    int cuda_device = -1;
};

int find_cuda_device() {
    int32_t count = 0;
    if (mome_device_count(&count) != MOME_STATUS_OK) return -1;
    for (int32_t i = 0; i < count; ++i) {
        mome_device_info info{};
        if (mome_device_get_info(i, &info) == MOME_STATUS_OK && info.backend == MOME_BACKEND_CUDA) return info.index;
    }
    return -1;
}

bool wanted(const Options& o, Op op) { return o.op.empty() || o.op == mome::op_name(op); }

// Why `b` cannot run `c`, or empty.
std::string unsupported(const Backend& b, const OpCase& c) {
    if (!b.supports_type(c.type)) return std::string("supports_type: no ") + type_name(c.type);
    if (!b.supports_op(c.op, c.type)) return std::string("supports_op: no");
    return {};
}

// The backend's outputs against cpu-ref's: one line, counted.
void compare(const OpCase& c, const Backend& b, const Outputs& got, const Outputs& want, Tally& tally) {
    double err = 0;
    int64_t mismatched = 0;
    for (size_t i = 0; i < want.floats.size(); ++i)
        err = std::max(err, i < got.floats.size() ? rel_error(got.floats[i], want.floats[i]) : INFINITY);
    for (size_t i = 0; i < want.ints.size(); ++i)
        for (size_t j = 0; j < want.ints[i].size(); ++j) mismatched += i >= got.ints.size() || got.ints[i][j] != want.ints[i][j];
    const double tol = c.tolerance(b);
    const bool ok = (tol == 0 ? err == 0 : err <= tol) && mismatched == 0;
    (ok ? tally.passed : tally.failed)++;
    if (!want.ints.empty()) std::printf("%s %s: %s mismatched=%lld\n", c.label().c_str(), b.name(), ok ? "OK" : "FAIL", (long long)mismatched);
    else std::printf("%s %s: %s err=%.2e (tol %.0e)\n", c.label().c_str(), b.name(), ok ? "OK" : "FAIL", err, tol);
}

// `c` on cpu-ref and on every backend under test (cpu-ref's outputs given, or computed).
void check_case(const OpCase& c, Backends& bs, const Options& o, Tally& tally, const Outputs* ref_out = nullptr) {
    Outputs want;
    if (!ref_out) {
        try {
            want = run_case(c, *bs.ref);
            ref_out = &want;
        } catch (const std::exception& e) {
            std::printf("%s cpu-ref: FAIL %s\n", c.label().c_str(), e.what());
            tally.failed++;
            return;
        }
    }
    for (auto& b : bs.tested) {
        if (!o.backend.empty() && o.backend != b->name()) continue;
        const std::string why = unsupported(*b, c);
        if (!why.empty()) {
            std::printf("%s %s: SKIP (%s)\n", c.label().c_str(), b->name(), why.c_str());
            tally.skipped++;
            continue;
        }
        try {
            compare(c, *b, run_case(c, *b), *ref_out, tally);
        } catch (const mome::Error& e) {
            const bool refused = e.status() == MOME_STATUS_UNSUPPORTED;
            std::printf("%s %s: %s (%s)\n", c.label().c_str(), b->name(), refused ? "SKIP" : "FAIL", e.what());
            (refused ? tally.skipped : tally.failed)++;
        } catch (const std::exception& e) {
            std::printf("%s %s: FAIL %s\n", c.label().c_str(), b->name(), e.what());
            tally.failed++;
        }
    }
}

int finish(const char* mode, const Tally& t) {
    std::printf("backend_ops %s: %d passed, %d failed, %d skipped\n", mode, t.passed, t.failed, t.skipped);
    return t.failed ? 1 : 0;
}

int run_test(Backends& bs, const Options& o) {
    std::mt19937 rng(o.seed);
    const std::vector<OpCase> forward = forward_cases(rng);
    const std::vector<GradCase> backward = backward_cases(rng);
    std::vector<const OpCase*> cases;
    for (const OpCase& c : forward) cases.push_back(&c);
    for (const GradCase& g : backward) cases.push_back(&g.test);
    Tally tally;
    // Every op of the enum has a case (op_name says "?" past the last one).
    for (int i = 0; std::strcmp(mome::op_name(static_cast<Op>(i)), "?") != 0; ++i) {
        const bool covered = std::any_of(cases.begin(), cases.end(), [&](const OpCase* c) { return static_cast<int>(c->op) == i; });
        if (!covered) std::printf("%s: FAIL no case for this op\n", mome::op_name(static_cast<Op>(i))), tally.failed++;
    }
    for (const OpCase* c : cases)
        if (wanted(o, c->op)) check_case(*c, bs, o, tally);
    if (bs.cuda_device >= 0 && o.op.empty() && (o.backend.empty() || o.backend == "cuda")) {
        std::printf("C ABI cases on CUDA device %d:\n", bs.cuda_device);
        const int failures = run_abi_tests(bs.cuda_device, o.seed);
        tally.failed += failures;
        tally.passed += failures == 0;
    }
    return finish("test", tally);
}

double loss_of(const std::vector<float>& out, const std::vector<float>& r) {
    double l = 0;
    for (size_t i = 0; i < out.size(); ++i) l += static_cast<double>(r[i]) * out[i];
    return l;
}

// dL/d(inputs[k]) by central differences of cpu-ref's forward, element by element (the
// outputs an element does not reach come out bit-identical, so they cancel exactly).
std::vector<float> finite_differences(const GradCase& g, Backend& ref, size_t k) {
    constexpr float kStep = 1e-2f;
    Inputs x = g.inputs;
    std::vector<float> fd(x[k].size());
    auto loss = [&] {
        Run run(ref);
        g.forward(run, x);
        run.call();
        return loss_of(run.outputs().floats.at(0), g.r);
    };
    for (size_t i = 0; i < fd.size(); ++i) {
        const float x0 = x[k][i];
        x[k][i] = x0 + kStep;
        const float hi = x[k][i];
        const double l_hi = loss();
        x[k][i] = x0 - kStep;
        const float lo = x[k][i];
        const double l_lo = loss();
        x[k][i] = x0;
        fd[i] = static_cast<float>((l_hi - l_lo) / (static_cast<double>(hi) - lo));
    }
    return fd;
}

// |a - b| (|a| when b is empty), infinite when a has a value that is not finite.
double distance(const std::vector<float>& a, const std::vector<float>& b = {}) {
    if (!b.empty() && a.size() != b.size()) return INFINITY;
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        const double d = static_cast<double>(a[i]) - (b.empty() ? 0.0f : b[i]);
        s += d * d;
    }
    return std::sqrt(s);
}

int run_grad(Backends& bs, const Options& o) {
    // |analytic - fd| / max(|fd|, kFloor) per input. With float forward ops and a step of 1e-2
    // the differences carry up to about 2e-4 of rounding and truncation (seeds 1-40); a
    // gradient off by a few tenths of a percent fails (rms_norm_backward with eps 1e-2 instead
    // of 1e-5 gives 1.3e-3). An input whose finite-difference gradient
    // is below kFloor would make the check vacuous, and fails.
    constexpr double kTol = 1e-3, kFloor = 1e-2;
    std::mt19937 rng(o.seed);
    forward_cases(rng);  // the same inputs as mode test
    const std::vector<GradCase> cases = backward_cases(rng);
    Tally tally;
    for (const GradCase& g : cases) {
        if (!wanted(o, g.grad.op)) continue;
        Outputs analytic_out;
        try {
            analytic_out = run_case(g.grad, *bs.ref);
        } catch (const std::exception& e) {
            std::printf("%s cpu-ref: FAIL %s\n", g.grad.label().c_str(), e.what());
            tally.failed++;
            continue;
        }
        const Inputs analytic = g.to_gradients ? g.to_gradients(analytic_out) : analytic_out.floats;
        for (size_t k = 0; k < g.inputs.size(); ++k) {
            const std::vector<float> fd = finite_differences(g, *bs.ref, k);
            const double fd_norm = distance(fd), err = distance(analytic.at(k), fd) / std::max(fd_norm, kFloor);
            const bool ok = err <= kTol && fd_norm >= kFloor;
            (ok ? tally.passed : tally.failed)++;
            std::printf("%s d%s cpu-ref vs finite differences: %s err=%.2e (tol %.0e) |fd|=%.3g%s\n", g.grad.label().c_str(),
                        g.names[k].c_str(), ok ? "OK" : "FAIL", err, kTol, fd_norm, fd_norm < kFloor ? " (vacuous)" : "");
        }
        check_case(g.grad, bs, o, tally, &analytic_out);
    }
    return finish("grad", tally);
}

// Median wall time of one call in microseconds (at least 3 runs, up to 9 or about 1 s).
double median_us(Run& run) {
    run.call();
    run.wait();
    std::vector<double> times;
    double total = 0;
    while (times.size() < 3 || (times.size() < 9 && total < 1e6)) {
        const auto t0 = std::chrono::steady_clock::now();
        run.call();
        run.wait();
        times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        total += times.back();
    }
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

int run_perf(Backends& bs, const Options& o) {
    std::mt19937 rng(o.seed);
    std::vector<OpCase> cases = forward_perf_cases(rng);
    for (const GradCase& g : backward_perf_cases(rng)) cases.push_back(g.test);
    std::vector<Backend*> all{bs.ref.get()};
    for (auto& b : bs.tested) all.push_back(b.get());
    Tally tally;
    for (const OpCase& c : cases) {
        if (!wanted(o, c.op)) continue;
        for (Backend* b : all) {
            if (!o.backend.empty() && o.backend != b->name()) continue;
            const std::string why = unsupported(*b, c);
            if (!why.empty()) {
                std::printf("perf %s %s: SKIP (%s)\n", c.label().c_str(), b->name(), why.c_str());
                continue;
            }
            try {
                Run run(*b);
                c.setup(run);
                const double us = median_us(run);
                std::printf("perf %s %s: %.1f us", c.label().c_str(), b->name(), us);
                if (c.bytes > 0) std::printf(", %.2f GB/s", c.bytes / us * 1e-3);
                if (c.flops > 0) std::printf(", %.2f GFLOP/s", c.flops / us * 1e-3);
                std::printf("\n");
            } catch (const std::exception& e) {
                std::printf("perf %s %s: FAIL %s\n", c.label().c_str(), b->name(), e.what());
                tally.failed++;
            }
        }
    }
    if (bs.cuda_device >= 0 && o.op.empty()) tally.failed += run_abi_perf(bs.cuda_device);
    return tally.failed ? 1 : 0;
}

int usage() {
    std::fprintf(stderr, "usage: mome_backend_ops [test|grad|perf] [--seed N] [--op NAME] [--backend cpu-fast|cuda]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    o.seed = static_cast<unsigned>(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
    int i = 1;
    if (i < argc && argv[i][0] != '-') o.mode = argv[i++];
    for (; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        if (a == "--seed") {
            char* end = nullptr;
            o.seed = static_cast<unsigned>(std::strtoul(argv[++i], &end, 10));
            if (*end != '\0') return usage();
        } else if (a == "--op") {
            o.op = argv[++i];
        } else if (a == "--backend") {
            o.backend = argv[++i];
        } else {
            return usage();
        }
    }
    if (o.mode != "test" && o.mode != "grad" && o.mode != "perf") return usage();
    std::printf("backend_ops %s: seed %u (--seed %u replays it)\n", o.mode.c_str(), o.seed, o.seed);

    Backends bs;
    bs.tested.push_back(mome::make_cpu_fast_backend(bs.pool));
    bs.cuda_device = find_cuda_device();
    if (bs.cuda_device >= 0) {
        try {
            bs.tested.push_back(mome::make_cuda_backend(bs.cuda_device));
        } catch (const std::exception& e) {
            std::printf("backend_ops: FAIL the CUDA backend on device %d: %s\n", bs.cuda_device, e.what());
            return 1;
        }
    } else std::printf("no CUDA device (or a build without CUDA): cpu-fast against cpu-ref only\n");
    if (!o.backend.empty() && o.backend != "cpu-ref" &&
        std::none_of(bs.tested.begin(), bs.tested.end(), [&](const auto& b) { return o.backend == b->name(); })) {
        std::printf("backend_ops: no backend %s here\n", o.backend.c_str());
        return 1;
    }
    if (o.mode == "test") return run_test(bs, o);
    if (o.mode == "grad") return run_grad(bs, o);
    return run_perf(bs, o);
}
