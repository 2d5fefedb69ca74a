// ABI: memory banks and the grouped-LoRA operator.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/abi_struct.h"
#include "core/backend_kind.h"
#include "core/cuda_backend.h"
#include "core/error.h"
#include "core/log.h"
#include "core/half.h"
#include "cpu/shared_pools.h"
#include "gguf/tensor_types.h"
#include "memory/bank.h"
#include "memory/bank_file.h"
#include "cpu/lora.h"
#include "memory/memory_layer.h"
#include "memory/tuning.h"
#include "session/session.h"

using namespace mome;

namespace {

mome_bank_params default_bank_params() {
    mome_bank_params p = abi_struct<mome_bank_params>();
    p.n_layers = 0;
    p.n_experts = 1 << 16;
    p.key_dim = 128;
    p.rank = 1;
    p.top_k = 32;
    p.temperature = 1.0f;
    p.alpha = 1.0f;
    p.routing = MOME_ROUTING_MODE_SEQUENCE;
    p.router = MOME_ROUTER_KIND_FLAT;
    p.weight_type = MOME_TENSOR_TYPE_F32;
    p.seed = 42;
    return p;
}

}  // namespace

extern "C" {

mome_status mome_lora_apply(const mome_lora_desc* experts_in, const float* u, int64_t n_tokens, const int64_t* segment_offsets,
                            int64_t n_segments, const int32_t* indices, const float* weights, int32_t top_k, float scale,
                            float* out, int32_t n_threads) {
    return guarded([&] {
        const mome_lora_desc experts = read_abi_struct(experts_in, mome_lora_desc{}, "experts is null");
        require_arg(out != nullptr, "out is null");
        check_backend(experts.backend, experts.device);
        const LoraTables t = lora_tables_of(experts);
        LoraBatch b;
        b.u = u, b.n_tokens = n_tokens, b.segment_offsets = segment_offsets, b.n_segments = n_segments;
        b.indices = indices, b.weights = weights, b.top_k = top_k, b.scale = scale;
        if (is_cuda(experts.backend)) {
            check_lora_shape(b);
            cuda_lora_apply(experts.device, experts, u, n_tokens, segment_offsets, n_segments, indices, weights, top_k, scale, out,
                            experts.stream);
            return;
        }
        check_lora_batch(t, b);
        lora_apply(t, b, out, shared_pool(threads_or_all(n_threads)));
    });
}

mome_status mome_bank_default_params(mome_bank_params* out) {
    return guarded([&] { write_abi_struct(out, default_bank_params(), "out is null"); });
}

mome_status mome_bank_create(const mome_model* model, const mome_bank_params* params, mome_bank** out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        const mome_bank_params p = params ? read_abi_struct(params, default_bank_params(), "params is null") : default_bank_params();
        std::unique_ptr<mome_bank> bank = create_bank(*model, p);
        log_info(format("memory bank: %d layer(s) of %lld experts, rank %d, top-%d", bank->params.n_layers,
                        static_cast<long long>(bank->params.n_experts), bank->params.rank, bank->params.top_k));
        *out = bank.release();
    });
}

mome_status mome_bank_load(const mome_model* model, const char* path, mome_bank** out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        require_arg(path != nullptr && *path != '\0', "path is null or empty");
        *out = load_bank(*model, path).release();
    });
}

mome_status mome_bank_save(const mome_bank* bank, const char* path) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        require_arg(path != nullptr && *path != '\0', "path is null or empty");
        save_bank(*bank, path);
    });
}

void mome_bank_free(mome_bank* bank) { delete bank; }

mome_status mome_bank_get_params(const mome_bank* bank, mome_bank_params* out) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        write_abi_struct(out, bank->params, "out is null");
    });
}

mome_status mome_bank_size_bytes(const mome_bank* bank, uint64_t* out) {
    return guarded([&] {
        require_arg(bank != nullptr && out != nullptr, "bank or out is null");
        uint64_t total = 0;
        for (const MemoryLayer& l : bank->layers) total += l.wq.size + l.centre.size + l.keys.size + l.a.size + l.b.size;
        *out = total;
    });
}

mome_status mome_bank_route(const mome_bank* bank, int32_t layer_slot, const float* queries, int64_t n_queries,
                            int32_t* out_indices, float* out_weights, int32_t n_threads) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        if (layer_slot < 0 || layer_slot >= bank->params.n_layers)
            fail(MOME_STATUS_OUT_OF_RANGE, format("memory layer slot %d is outside 0..%d", layer_slot, bank->params.n_layers - 1));
        route_bank(*bank, layer_slot, queries, n_queries, out_indices, out_weights, threads_or_all(n_threads));
    });
}

}  // extern "C"

namespace {

const MemoryLayer& layer_at(const mome_bank* bank, int32_t slot, int64_t expert) {
    if (slot < 0 || slot >= bank->params.n_layers)
        fail(MOME_STATUS_OUT_OF_RANGE, format("memory layer slot %d is outside 0..%d", slot, bank->params.n_layers - 1));
    if (expert < 0 || expert >= bank->params.n_experts)
        fail(MOME_STATUS_OUT_OF_RANGE, format("expert %lld is outside 0..%lld", static_cast<long long>(expert),
                                              static_cast<long long>(bank->params.n_experts - 1)));
    return bank->layers[static_cast<size_t>(slot)];
}

}  // namespace

extern "C" {

mome_status mome_bank_get_expert(const mome_bank* bank, int32_t layer_slot, int64_t expert, float* a, float* b) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        const MemoryLayer& l = layer_at(bank, layer_slot, expert);
        const int64_t n = bank->params.rank * bank->model->config.n_embd;
        if (a) read_floats(l.a, expert * n, n, a);
        if (b) read_floats(l.b, expert * n, n, b);
    });
}

mome_status mome_bank_set_expert(mome_bank* bank, int32_t layer_slot, int64_t expert, const float* a, const float* b) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        layer_at(bank, layer_slot, expert);
        MemoryLayer& l = bank->layers[static_cast<size_t>(layer_slot)];
        const int64_t n = bank->params.rank * bank->model->config.n_embd;
        for (const float* v : {a, b})
            if (v)
                for (int64_t i = 0; i < n; ++i)
                    if (!std::isfinite(v[i]))
                        fail(MOME_STATUS_INVALID_ARGUMENT, format("expert %lld: value %lld of %s is not finite",
                                                                  static_cast<long long>(expert), static_cast<long long>(i),
                                                                  v == a ? "A" : "B"));
        if (a) write_floats(l.a, expert * n, n, a);
        if (b) write_floats(l.b, expert * n, n, b);
    });
}

}  // extern "C"

extern "C" {

mome_status mome_bank_fact_backward(const mome_bank* bank, const mome_fact_desc* fact_in, mome_fact_grads* out_in, int32_t n_threads) {
    return guarded([&] {
        require_arg(bank != nullptr, "bank is null");
        const mome_fact_desc f = read_abi_struct(fact_in, mome_fact_desc{}, "fact is null");
        mome_fact_grads g_out = read_abi_struct(out_in, mome_fact_grads{}, "out is null");
        const mome_fact_desc* fact = &f;
        mome_fact_grads* out = &g_out;
        require_arg(out->indices != nullptr && out->weights != nullptr && out->da != nullptr && out->db != nullptr,
                    "out->indices, weights, da and db are required");
        require_arg((out->dwq == nullptr) == (out->dkeys == nullptr), "out->dwq and out->dkeys come together: give both or neither");
        const int threads = threads_or_all(n_threads);
        FactInput input{fact->tokens, fact->n_tokens, fact->answer_start, fact->route_indices, fact->route_weights, fact->prefix,
                        fact->prefix_out};
        if (const mome_session* s = fact->session) {
            if (s->backend->device() == Device::Host)
                fail(MOME_STATUS_INVALID_ARGUMENT, "the session given for a tuning step is not a CUDA session");
            if (s->model != bank->model) fail(MOME_STATUS_INVALID_ARGUMENT, "the CUDA session is of another model than the bank's");
            input.backend = s->backend.get();
            input.weights = &s->weights;
        }
        const mome_bank_params& p = bank->params;
        const int64_t capacity = out->capacity > 0 ? out->capacity : p.top_k;
        const int64_t needed = p.routing == MOME_ROUTING_MODE_TOKEN ? static_cast<int64_t>(fact->n_tokens) * p.top_k : p.top_k;
        if (capacity < needed)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("the outputs hold %lld route entries; this fact needs %lld (n_tokens x top_k when the "
                                                      "bank routes per token)", static_cast<long long>(capacity), static_cast<long long>(needed)));
        const FactGradients g = fact_gradients(*bank, input, out->dwq != nullptr, shared_pool(threads), threads);
        std::copy(g.indices.begin(), g.indices.end(), out->indices);
        std::copy(g.weights.begin(), g.weights.end(), out->weights);
        std::copy(g.da.begin(), g.da.end(), out->da);
        std::copy(g.db.begin(), g.db.end(), out->db);
        if (out->experts) std::copy(g.experts.begin(), g.experts.end(), out->experts);
        out->n_experts = static_cast<int32_t>(g.experts.size());
        if (out->dwq) {
            std::copy(g.dwq.begin(), g.dwq.end(), out->dwq);
            std::copy(g.dkeys.begin(), g.dkeys.end(), out->dkeys);
        }
        out->result = mome_fact_result{static_cast<float>(g.loss), g.n_answer, g.n_correct};
        write_abi_struct(out_in, g_out, "out is null");
    });
}

}  // extern "C"

extern "C" {

mome_status mome_bank_question_mean(const mome_bank* bank, const int32_t* tokens, int32_t n_tokens, float* out, int32_t n_threads) {
    return guarded([&] {
        require_arg(bank != nullptr && out != nullptr, "bank or out is null");
        const std::vector<float> mean = question_mean(*bank, tokens, n_tokens, shared_pool(threads_or_all(n_threads)));
        std::copy(mean.begin(), mean.end(), out);
    });
}

mome_status mome_bank_get_centre(const mome_bank* bank, int32_t layer_slot, float* out) {
    return guarded([&] {
        require_arg(bank != nullptr && out != nullptr, "bank or out is null");
        const MemoryLayer& l = layer_at(bank, layer_slot, 0);
        read_floats(l.centre, 0, bank->model->config.n_embd, out);
    });
}

mome_status mome_bank_set_centre(mome_bank* bank, int32_t layer_slot, const float* centre) {
    return guarded([&] {
        require_arg(bank != nullptr && centre != nullptr, "bank or centre is null");
        layer_at(bank, layer_slot, 0);
        const int64_t d = bank->model->config.n_embd;
        for (int64_t i = 0; i < d; ++i)
            if (!std::isfinite(centre[i])) fail(MOME_STATUS_INVALID_ARGUMENT, format("centre value %lld is not finite", static_cast<long long>(i)));
        write_floats(bank->layers[static_cast<size_t>(layer_slot)].centre, 0, d, centre);
    });
}

}  // extern "C"

namespace {

// Key rows of a layer: flat, n_experts rows of key_dim; product, 2 x n_sub rows of key_dim / 2.
int64_t key_row_length(const mome_bank& bank) {
    return bank.params.router == MOME_ROUTER_KIND_PRODUCT ? bank.params.key_dim / 2 : bank.params.key_dim;
}

void check_key_rows(const mome_bank& bank, const MemoryLayer& l, int64_t first, int64_t count) {
    const int64_t rows = static_cast<int64_t>(l.keys.size / element_size(l.keys.type)) / key_row_length(bank);
    if (first < 0 || count < 0 || first > rows || count > rows - first)
        fail(MOME_STATUS_OUT_OF_RANGE, format("key rows %lld..%lld are outside the layer's %lld rows", static_cast<long long>(first),
                                              static_cast<long long>(first + count - 1), static_cast<long long>(rows)));
}

void require_finite(const float* v, int64_t n, const char* what) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(v[i])) fail(MOME_STATUS_INVALID_ARGUMENT, format("%s value %lld is not finite", what, static_cast<long long>(i)));
}

}  // namespace

extern "C" {

mome_status mome_bank_get_wq(const mome_bank* bank, int32_t layer_slot, float* out) {
    return guarded([&] {
        require_arg(bank != nullptr && out != nullptr, "bank or out is null");
        const MemoryLayer& l = layer_at(bank, layer_slot, 0);
        read_floats(l.wq, 0, bank->params.key_dim * bank->model->config.n_embd, out);
    });
}

mome_status mome_bank_set_wq(mome_bank* bank, int32_t layer_slot, const float* wq) {
    return guarded([&] {
        require_arg(bank != nullptr && wq != nullptr, "bank or wq is null");
        layer_at(bank, layer_slot, 0);
        const int64_t n = bank->params.key_dim * bank->model->config.n_embd;
        require_finite(wq, n, "W_q");
        write_floats(bank->layers[static_cast<size_t>(layer_slot)].wq, 0, n, wq);
    });
}

mome_status mome_bank_get_key_rows(const mome_bank* bank, int32_t layer_slot, int64_t first_row, int64_t n_rows, float* out) {
    return guarded([&] {
        require_arg(bank != nullptr && out != nullptr, "bank or out is null");
        const MemoryLayer& l = layer_at(bank, layer_slot, 0);
        check_key_rows(*bank, l, first_row, n_rows);
        const int64_t len = key_row_length(*bank);
        read_floats(l.keys, first_row * len, n_rows * len, out);
    });
}

mome_status mome_bank_set_key_rows(mome_bank* bank, int32_t layer_slot, int64_t first_row, int64_t n_rows, const float* rows) {
    return guarded([&] {
        require_arg(bank != nullptr && rows != nullptr, "bank or rows is null");
        layer_at(bank, layer_slot, 0);
        MemoryLayer& l = bank->layers[static_cast<size_t>(layer_slot)];
        check_key_rows(*bank, l, first_row, n_rows);
        const int64_t len = key_row_length(*bank);
        require_finite(rows, n_rows * len, "key");
        write_floats(l.keys, first_row * len, n_rows * len, rows);
    });
}

}  // extern "C"
