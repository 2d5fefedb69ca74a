// The screening pass's query layout, its portable kernel, and the pick of the AMX kernel
// (cpu/screen.h).
#include "cpu/screen.h"

#include <cmath>
#include <cpuid.h>
#include <cstdlib>
#include <cstring>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/half.h"

namespace mome {

ScreenQueries pack_screen_queries(const uint16_t* queries_bf16, int64_t n_queries, int64_t dim) {
    ScreenQueries q;
    q.n_queries = n_queries;
    q.dim = dim;
    q.groups = (n_queries + 15) / 16;
    q.steps = (dim + 31) / 32;
    q.pairs.assign(static_cast<size_t>(q.groups * q.steps * 16 * 32), 0);
    for (int64_t query = 0; query < n_queries; ++query)
        for (int64_t i = 0; i < dim; ++i) {
            const int64_t g = query / 16, n = query % 16, s = i / 32, r = (i % 32) / 2, p = i % 2;
            q.pairs[static_cast<size_t>(((g * q.steps + s) * 16 + r) * 32 + 2 * n + p)] = queries_bf16[query * dim + i];
        }
    return q;
}

// Plain loops: the queries unpacked from the layout once, each key rounded to BF16 element by
// element, products summed in dimension order.
void screen_block_portable(const Tensor& keys, const ScreenQueries& q, const float* floor, const float* slack,
                           std::vector<ScreenHit>& hits) {
    std::vector<float> queries(static_cast<size_t>(q.n_queries * q.dim)), k(static_cast<size_t>(q.dim));
    for (int64_t query = 0; query < q.n_queries; ++query)
        for (int64_t i = 0; i < q.dim; ++i) {
            const int64_t g = query / 16, n = query % 16, s = i / 32, r = (i % 32) / 2, p = i % 2;
            queries[static_cast<size_t>(query * q.dim + i)] = bf16_to_float(q.pairs[static_cast<size_t>(((g * q.steps + s) * 16 + r) * 32 + 2 * n + p)]);
        }
    for (int64_t j = 0; j < keys.rows; ++j) {
        float sumsq = 0;
        for (int64_t i = 0; i < q.dim; ++i) {
            const float x = weight_at(keys, j, i);
            sumsq += x * x;
            k[static_cast<size_t>(i)] = bf16_to_float(float_to_bf16(x));
        }
        const float norm = std::sqrt(sumsq);
        for (int64_t query = 0; query < q.n_queries; ++query) {
            const float* qv = queries.data() + query * q.dim;
            float a = 0;
            for (int64_t i = 0; i < q.dim; ++i) a += qv[i] * k[static_cast<size_t>(i)];
            if (!std::isfinite(a) || !std::isfinite(norm) || a + slack[query] * norm >= floor[query])
                hits.push_back({static_cast<int32_t>(j), static_cast<int32_t>(query), a, norm});
        }
    }
}

namespace {

uint64_t xcr0() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0;  // OSXSAVE
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

// AVX-512 F, BW, VL and BF16 in CPUID leaf 7, and the OS saving the AVX-512 state (XCR0 bits
// 1, 2 and 5-7).
bool avx512_bf16_usable() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool f = (ebx >> 16) & 1, bw = (ebx >> 30) & 1, vl = (ebx >> 31) & 1;
    unsigned eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
    const bool bf16 = __get_cpuid_count(7, 1, &eax1, &ebx1, &ecx1, &edx1) && ((eax1 >> 5) & 1);
    return f && bw && vl && bf16 && (xcr0() & 0xe6) == 0xe6;
}

// AMX-BF16 and AMX-TILE in CPUID leaf 7, the tile state enabled in XCR0 (bits 17 and 18), and
// Linux's permission for this process to use it (arch_prctl ARCH_REQ_XCOMP_PERM).
bool amx_usable() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!avx512_bf16_usable() || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
    if (!(amx_bf16 && amx_tile) || (xcr0() & (3u << 17)) != (3u << 17)) return false;
#ifdef SYS_arch_prctl
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
}

// AMX by default. The AVX-512 BF16 kernel only when asked for: on the Intel Xeon it was
// measured on, it routed slower than the plain F32 scan (bench/RESULTS.md), and it has not yet
// been measured on a CPU with AVX-512 BF16 but no AMX.
ScreenBlockFn pick() {
    const char* forced = std::getenv("MOME_CPU_ISA");
    for (const ScreenKernel& k : screen_kernels()) {
        const bool amx = k.fn == screen_block_amx;
        if (amx && (!forced || std::strcmp(forced, "amx") == 0)) return k.fn;
        if (!amx && forced && std::strcmp(forced, "avx512bf16") == 0) return k.fn;
    }
    return nullptr;
}

}  // namespace

std::vector<ScreenKernel> screen_kernels() {
    std::vector<ScreenKernel> out;
    if (amx_usable()) out.push_back({"amx-bf16", screen_block_amx});
    if (avx512_bf16_usable()) out.push_back({"avx512-bf16", screen_block_avx512bf16});
    return out;
}

ScreenBlockFn screen_block_best() {
    static const ScreenBlockFn fn = pick();
    return fn;
}

const char* screen_isa() {
    const ScreenBlockFn fn = screen_block_best();
    for (const ScreenKernel& k : screen_kernels())
        if (k.fn == fn) return k.name;
    return "none";
}

}  // namespace mome
