// ABI: the locality gate of a one-layer bank's memory layer.
#include <vector>

#include "core/error.h"
#include "cpu/shared_pools.h"
#include "memory/bank.h"
#include "memory/gate.h"

using namespace mome;

namespace {

const MemoryLayer& layer_of(const mome_bank* bank, int32_t slot) {
    if (slot < 0 || slot >= bank->params.n_layers)
        fail(MOME_STATUS_OUT_OF_RANGE, format("memory layer slot %d is outside 0..%d", slot, bank->params.n_layers - 1));
    return bank->layers[static_cast<size_t>(slot)];
}

MemoryLayer& layer_of(mome_bank* bank, int32_t slot) {
    layer_of(static_cast<const mome_bank*>(bank), slot);  // checks the slot
    return bank->layers[static_cast<size_t>(slot)];
}

void require_one_layer(const mome_bank* bank) {
    if (bank->params.n_layers != 1)
        fail(MOME_STATUS_UNSUPPORTED, format("the gate's signatures are made for one-layer banks; this one has %d layers", bank->params.n_layers));
}

}  // namespace

extern "C" {

mome_status mome_bank_gate_add_fact(mome_bank* bank, const int32_t* tokens, int32_t n_tokens, int32_t answer_start,
                                    int32_t n_threads) {
    return guarded([&] {
        require_arg(bank != nullptr && tokens != nullptr, "bank or tokens is null");
        require_one_layer(bank);
        int64_t rows = 0;
        const std::vector<float> q = fact_gate_queries(*bank, tokens, n_tokens, answer_start, shared_pool(threads_or_all(n_threads)), &rows);
        add_gate_signatures(*bank, layer_of(bank, 0), q.data(), rows);
    });
}

mome_status mome_bank_gate_evidence(const mome_bank* bank, const int32_t* tokens, int32_t n_tokens, float* out, int32_t capacity,
                                    int32_t* n_out, int32_t n_threads) {
    return guarded([&] {
        require_arg(bank != nullptr && tokens != nullptr && out != nullptr && n_out != nullptr, "bank, tokens, out or n_out is null");
        require_one_layer(bank);
        const int threads = threads_or_all(n_threads);
        int64_t rows = 0;
        const std::vector<float> q = text_queries(*bank, tokens, n_tokens, shared_pool(threads), &rows);
        if (rows > capacity)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("out holds %d values; this text needs %lld", capacity, static_cast<long long>(rows)));
        gate_evidence(*bank, 0, q.data(), rows, out, threads);
        *n_out = static_cast<int32_t>(rows);
    });
}

mome_status mome_bank_get_gate(const mome_bank* bank, int32_t layer_slot, float* threshold, int64_t* n_signatures) {
    return guarded([&] {
        require_arg(bank != nullptr && threshold != nullptr && n_signatures != nullptr, "bank, threshold or n_signatures is null");
        const MemoryLayer& l = layer_of(bank, layer_slot);
        *threshold = l.gate_threshold;
        *n_signatures = l.gate.shape.empty() ? 0 : l.gate.shape[0];
    });
}

mome_status mome_bank_set_gate_threshold(mome_bank* bank, int32_t layer_slot, float threshold) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        MemoryLayer& l = layer_of(bank, layer_slot);
        if (!(threshold == MemoryLayer::kGateOff || (threshold >= -1.0f && threshold <= 1.0f)))
            fail(MOME_STATUS_INVALID_ARGUMENT, format("gate threshold %g is neither in [-1, 1] nor -2 (off)", threshold));
        l.gate_threshold = threshold;
    });
}

}  // extern "C"
