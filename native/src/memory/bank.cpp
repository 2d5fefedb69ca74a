#include "memory/bank.h"

#include <climits>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/abi_enum.h"
#include "core/abort.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/half.h"
#include "cpu/shared_pools.h"
#include "gguf/tensor_types.h"

namespace mome {

namespace {

// Experts' tables beyond this are refused up front rather than failing halfway.
constexpr uint64_t kMaxBankBytes = uint64_t(1) << 40;

uint64_t count_of(const std::vector<int64_t>& shape) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    return n;
}

uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Fills `table` with N(0, std) values in its storage type: chunks of rows get their own
// seeds, so the result is the same for any number of threads.
void fill_normal(TableBytes& table, uint64_t seed, float std) {
    check_abort();  // the bank is not handed out until every table is filled
    const uint64_t n = count_of(table.shape);
    const size_t elem = element_size(table.type);
    table.owned.assign(n * elem, 0);
    table.data = table.owned.data();
    table.size = table.owned.size();
    if (std == 0) return;
    constexpr uint64_t kChunk = 1 << 16;
    const int64_t chunks = static_cast<int64_t>((n + kChunk - 1) / kChunk);
    const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    shared_pool(threads).run(chunks, [&](int64_t c) {
        uint64_t state = mix(seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(c + 1));
        const uint64_t begin = static_cast<uint64_t>(c) * kChunk, end = std::min(n, begin + kChunk);
        for (uint64_t i = begin; i < end; i += 2) {
            const double u1 = (static_cast<double>((state = mix(state + 1)) >> 11) + 0.5) / 9007199254740992.0;
            const double u2 = static_cast<double>((state = mix(state + 1)) >> 11) / 9007199254740992.0;
            const double r = std::sqrt(-2.0 * std::log(u1));
            const float pair[2] = {static_cast<float>(std * r * std::cos(2 * M_PI * u2)),
                                   static_cast<float>(std * r * std::sin(2 * M_PI * u2))};
            for (uint64_t j = 0; j < 2 && i + j < end; ++j) {
                uint8_t* dst = table.owned.data() + (i + j) * elem;
                if (table.type == MOME_TENSOR_TYPE_F32) std::memcpy(dst, &pair[j], 4);
                else {
                    const uint16_t h = table.type == MOME_TENSOR_TYPE_F16 ? float_to_f16(pair[j]) : float_to_bf16(pair[j]);
                    std::memcpy(dst, &h, 2);
                }
            }
        }
    });
}

TableBytes table(mome_tensor_type type, std::vector<int64_t> shape) {
    TableBytes t;
    t.type = type;
    t.shape = std::move(shape);
    return t;
}

}  // namespace

size_t element_size(mome_tensor_type type) { return type == MOME_TENSOR_TYPE_F32 ? 4 : 2; }

void read_floats(const TableBytes& t, int64_t first, int64_t count, float* dst) {
    if (t.type == MOME_TENSOR_TYPE_F32) {  // one copy of the run
        std::memcpy(dst, t.data + static_cast<uint64_t>(first) * 4, static_cast<size_t>(count) * 4);
        return;
    }
    const size_t elem = element_size(t.type);
    for (int64_t i = 0; i < count; ++i) {
        const uint8_t* p = t.data + static_cast<uint64_t>(first + i) * elem;
        if (t.type == MOME_TENSOR_TYPE_F32) std::memcpy(dst + i, p, 4);
        else {
            uint16_t h;
            std::memcpy(&h, p, 2);
            dst[i] = t.type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
        }
    }
}

void write_floats(TableBytes& t, int64_t first, int64_t count, const float* src) {
    if (t.owned.empty()) {  // borrowed from a mapped file: copy before the first write
        t.owned.assign(t.data, t.data + t.size);
        t.data = t.owned.data();
    }
    if (t.type == MOME_TENSOR_TYPE_F32) {
        std::memcpy(t.owned.data() + static_cast<uint64_t>(first) * 4, src, static_cast<size_t>(count) * 4);
        return;
    }
    const size_t elem = element_size(t.type);
    for (int64_t i = 0; i < count; ++i) {
        uint8_t* p = t.owned.data() + static_cast<uint64_t>(first + i) * elem;
        if (t.type == MOME_TENSOR_TYPE_F32) std::memcpy(p, src + i, 4);
        else {
            const uint16_t h = t.type == MOME_TENSOR_TYPE_F16 ? float_to_f16(src[i]) : float_to_bf16(src[i]);
            std::memcpy(p, &h, 2);
        }
    }
}

std::vector<int64_t> wq_shape(const mome_bank_params& p, const mome_llama_config& c) { return {p.key_dim, c.n_embd}; }

std::vector<int64_t> centre_shape(const mome_llama_config& c) { return {c.n_embd}; }

std::vector<int64_t> keys_shape(const mome_bank_params& p) {
    if (p.router == MOME_ROUTER_KIND_PRODUCT) {
        const int64_t n_sub = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(p.n_experts))));
        return {2, n_sub, p.key_dim / 2};
    }
    return {p.n_experts, p.key_dim};
}

std::vector<int64_t> expert_shape(const mome_bank_params& p, const mome_llama_config& c) {
    return {p.n_experts, p.rank, c.n_embd};
}

mome_bank_params resolve_bank_params(const mome_llama_config& c, mome_bank_params p) {
    auto bad = [](const std::string& what) { fail(MOME_STATUS_INVALID_ARGUMENT, "memory bank: " + what); };
    if (p.n_layers < 0 || p.n_layers > MOME_MAX_MEMORY_LAYERS)
        bad(format("n_layers = %d is outside 0..%d", p.n_layers, MOME_MAX_MEMORY_LAYERS));
    if (p.n_layers == 0) {
        p.n_layers = 1;
        p.layers[0] = static_cast<int32_t>(std::min<int64_t>(c.n_layer - 1, (3 * c.n_layer) / 4));
    }
    for (int i = 0; i < p.n_layers; ++i) {
        if (p.layers[i] < 0 || p.layers[i] >= c.n_layer)
            bad(format("layer %d is out of range: the model has layers 0..%lld", p.layers[i], static_cast<long long>(c.n_layer - 1)));
        for (int j = 0; j < i; ++j)
            if (p.layers[j] == p.layers[i]) bad(format("layer %d is listed twice", p.layers[i]));
    }
    for (int i = p.n_layers; i < MOME_MAX_MEMORY_LAYERS; ++i) p.layers[i] = 0;
    if (p.n_experts < 1 || p.n_experts > INT32_MAX)
        bad(format("n_experts = %lld is outside 1..%d (expert indices are int32)", static_cast<long long>(p.n_experts), INT32_MAX));
    if (p.key_dim < 1 || p.key_dim > 65536) bad(format("key_dim = %lld is outside 1..65536", static_cast<long long>(p.key_dim)));
    if (p.rank < 1 || p.rank > 4096) bad(format("rank = %d is outside 1..4096", p.rank));
    if (p.top_k < 1 || p.top_k > 4096) bad(format("top_k = %d is outside 1..4096", p.top_k));
    if (p.top_k > p.n_experts) bad(format("top_k = %d is more than the %lld experts", p.top_k, static_cast<long long>(p.n_experts)));
    if (!(p.temperature > 0) || !std::isfinite(p.temperature)) bad("temperature must be finite and > 0");
    if (!std::isfinite(p.alpha)) bad("alpha must be finite");
    const int32_t routing = abi_enum(p.routing), router = abi_enum(p.router);
    if (routing != MOME_ROUTING_MODE_SEQUENCE && routing != MOME_ROUTING_MODE_TOKEN) bad(format("routing %d is not SEQUENCE or TOKEN", routing));
    if (router != MOME_ROUTER_KIND_FLAT && router != MOME_ROUTER_KIND_PRODUCT) bad(format("router %d is not FLAT or PRODUCT", router));
    if (!is_compute_type(static_cast<uint32_t>(abi_enum(p.weight_type)))) bad("weight_type must be F32, F16 or BF16");
    if (p.router == MOME_ROUTER_KIND_PRODUCT) {
        const int64_t n_sub = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(p.n_experts))));
        if (n_sub * n_sub != p.n_experts) bad(format("the product router needs a square number of experts, not %lld", static_cast<long long>(p.n_experts)));
        if (p.key_dim % 2 != 0) bad("the product router needs an even key_dim");
        if (p.top_k > n_sub) bad(format("top_k = %d is more than the %lld sub-keys per half", p.top_k, static_cast<long long>(n_sub)));
    }
    const uint64_t bytes = static_cast<uint64_t>(p.n_layers) *
                           (2 * count_of(expert_shape(p, c)) * element_size(p.weight_type) +
                            count_of(keys_shape(p)) * element_size(p.weight_type) + count_of(wq_shape(p, c)) * 4);
    if (bytes > kMaxBankBytes) bad(format("the tables would need %.1f GiB", bytes / 1073741824.0));
    return p;
}

uint32_t model_fingerprint(const mome_model& model) {
    std::call_once(model.fingerprint_once, [&] {
        const mome_llama_config& c = model.config;
        const int64_t dims[] = {c.n_vocab, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v, c.n_ff, c.n_rot};
        uint32_t crc = crc32c(0, dims, sizeof dims);
        for (const GgufTensor& t : model.file->tensors()) {
            crc = crc32c(crc, t.name.data(), t.name.size());
            crc = crc32c(crc, &t.type, sizeof t.type);
            crc = crc32c(crc, t.ne, sizeof t.ne);
            crc = crc32c(crc, model.file->tensor_data(t), t.size_bytes);
        }
        model.fingerprint = crc;
    });
    return model.fingerprint;
}

std::unique_ptr<mome_bank> create_bank(const mome_model& model, const mome_bank_params& params) {
    if (!model.is_llama) fail(MOME_STATUS_UNSUPPORTED, format("%s: not a Llama model", model.file->path().c_str()));
    const mome_llama_config& c = model.config;
    auto bank = std::make_unique<mome_bank>();
    bank->model = &model;
    bank->params = resolve_bank_params(c, params);
    const mome_bank_params& p = bank->params;
    for (int i = 0; i < p.n_layers; ++i) {
        MemoryLayer layer;
        layer.block = p.layers[i];
        const uint64_t seed = mix(p.seed + static_cast<uint64_t>(i) * 7919);
        layer.wq = table(MOME_TENSOR_TYPE_F32, wq_shape(p, c));
        fill_normal(layer.wq, seed ^ 1, 1.0f / std::sqrt(static_cast<float>(c.n_embd)));
        layer.centre = table(MOME_TENSOR_TYPE_F32, centre_shape(c));
        fill_normal(layer.centre, seed, 0.0f);  // no centring until tuning sets it
        layer.keys = table(p.weight_type, keys_shape(p));
        fill_normal(layer.keys, seed ^ 2, 1.0f);
        layer.a = table(p.weight_type, expert_shape(p, c));
        fill_normal(layer.a, seed ^ 3, 1.0f / std::sqrt(static_cast<float>(c.n_embd)));
        layer.b = table(p.weight_type, expert_shape(p, c));
        fill_normal(layer.b, seed ^ 4, 0.0f);  // B = 0: a fresh bank changes nothing
        layer.gate = table(MOME_TENSOR_TYPE_F32, {0, p.key_dim});  // no signatures, gate off
        bank->layers.push_back(std::move(layer));
    }
    return bank;
}

}  // namespace mome
