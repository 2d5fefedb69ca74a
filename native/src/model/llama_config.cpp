#include "model/llama_config.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"

namespace mome {

namespace {

// Largest dimension accepted; far above any released model, low enough that products of
// two never overflow and a hostile header cannot ask for absurd buffers later.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxLayers = 4096;

class Keys {
public:
    Keys(const GgufFile& f, std::string arch) : f_(f), arch_(std::move(arch)) {}

    [[noreturn]] void bad(const std::string& key, const std::string& why) const {
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: metadata '%s' %s", f_.path().c_str(), key.c_str(), why.c_str()));
    }

    const GgufValue* find(const std::string& suffix) const { return f_.find(arch_ + "." + suffix); }

    int64_t dim(const std::string& suffix, int64_t fallback, int64_t max = kMaxDim) const {
        const std::string key = arch_ + "." + suffix;
        const GgufValue* v = f_.find(key);
        if (!v) {
            if (fallback < 0) fail(MOME_STATUS_FORMAT_ERROR, format("%s: required metadata '%s' is missing", f_.path().c_str(), key.c_str()));
            return fallback;
        }
        if (v->type == MOME_VALUE_TYPE_ARRAY) fail(MOME_STATUS_UNSUPPORTED, format("%s: per-layer values for '%s' are not supported", f_.path().c_str(), key.c_str()));
        int64_t x = 0;
        try {
            x = value_as_i64(*v);
        } catch (const Error& e) {
            bad(key, std::string("is not an integer: ") + e.what());
        }
        if (x <= 0 || x > max) bad(key, format("= %lld is outside 1..%lld", static_cast<long long>(x), static_cast<long long>(max)));
        return x;
    }

    double real(const std::string& suffix, double fallback, bool required = false) const {
        const std::string key = arch_ + "." + suffix;
        const GgufValue* v = f_.find(key);
        if (!v) {
            if (required) fail(MOME_STATUS_FORMAT_ERROR, format("%s: required metadata '%s' is missing", f_.path().c_str(), key.c_str()));
            return fallback;
        }
        double x = 0;
        try {
            x = value_as_f64(*v);
        } catch (const Error& e) {
            bad(key, std::string("is not a number: ") + e.what());
        }
        if (!std::isfinite(x)) bad(key, "is not finite");
        return x;
    }

private:
    const GgufFile& f_;
    std::string arch_;
};

int64_t token_id(const GgufFile& f, const char* key, int64_t n_vocab) {
    const GgufValue* v = f.find(key);
    if (!v) return -1;
    int64_t id = -1;
    try {
        id = value_as_i64(*v);
    } catch (const Error&) {
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: metadata '%s' is not an integer", f.path().c_str(), key));
    }
    if (id < 0 || id >= n_vocab)
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: metadata '%s' = %lld is not a token id (vocabulary of %lld)", f.path().c_str(), key,
                                              static_cast<long long>(id), static_cast<long long>(n_vocab)));
    return id;
}

}  // namespace

mome_llama_config read_llama_config(const GgufFile& f) {
    const GgufValue* arch_value = f.find("general.architecture");
    if (!arch_value || arch_value->type != MOME_VALUE_TYPE_STRING)
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: required metadata 'general.architecture' (a string) is missing", f.path().c_str()));
    const std::string arch = value_as_string(*arch_value);
    if (arch != "llama")
        fail(MOME_STATUS_UNSUPPORTED, format("%s: architecture '%s' is not supported (only 'llama')", f.path().c_str(), arch.c_str()));
    Keys k(f, arch);

    mome_llama_config c{};
    // Any positive length: it is a claim about training and sizes nothing (a session's default
    // cache is capped, see session.cpp).
    c.n_ctx_train = k.dim("context_length", -1, INT64_MAX);
    c.n_embd = k.dim("embedding_length", -1);
    c.n_layer = k.dim("block_count", -1, kMaxLayers);
    c.n_ff = k.dim("feed_forward_length", -1);
    c.n_head = k.dim("attention.head_count", -1);
    c.n_head_kv = k.dim("attention.head_count_kv", c.n_head);
    if (c.n_head % c.n_head_kv != 0)
        k.bad(arch + ".attention.head_count_kv", format("= %lld does not divide head_count %lld", static_cast<long long>(c.n_head_kv),
                                                        static_cast<long long>(c.n_head)));
    const bool has_key_length = k.find("attention.key_length") != nullptr;
    if (!has_key_length && c.n_embd % c.n_head != 0)
        k.bad(arch + ".attention.head_count", "does not divide embedding_length and attention.key_length is absent");
    c.head_dim = k.dim("attention.key_length", c.n_embd / c.n_head);
    c.head_dim_v = k.dim("attention.value_length", c.head_dim);
    c.n_rot = k.dim("rope.dimension_count", c.head_dim);
    if (c.n_rot > c.head_dim || c.n_rot % 2 != 0)
        k.bad(arch + ".rope.dimension_count", format("= %lld must be even and at most the head dimension %lld",
                                                     static_cast<long long>(c.n_rot), static_cast<long long>(c.head_dim)));
    c.rms_norm_eps = static_cast<float>(k.real("attention.layer_norm_rms_epsilon", 0, true));
    if (!(c.rms_norm_eps > 0)) k.bad(arch + ".attention.layer_norm_rms_epsilon", "must be positive");
    c.rope_freq_base = static_cast<float>(k.real("rope.freq_base", 10000.0));
    if (!(c.rope_freq_base > 0)) k.bad(arch + ".rope.freq_base", "must be positive");

    c.rope_scaling = MOME_ROPE_SCALING_NONE;
    c.rope_scaling_factor = 1.0f;
    c.rope_freq_scale = 1.0f;
    if (const GgufValue* t = k.find("rope.scaling.type")) {
        if (t->type != MOME_VALUE_TYPE_STRING) k.bad(arch + ".rope.scaling.type", "is not a string");
        const std::string& type = value_as_string(*t);
        if (type == "linear") c.rope_scaling = MOME_ROPE_SCALING_LINEAR;
        else if (type == "yarn") c.rope_scaling = MOME_ROPE_SCALING_YARN;
        else if (type != "none")
            fail(MOME_STATUS_UNSUPPORTED, format("%s: rope scaling '%s' is not supported", f.path().c_str(), type.c_str()));
    }
    // As llama.cpp: the factor (or the older rope.scale_linear) scales positions whatever
    // the scaling type says.
    const double factor = k.real("rope.scaling.factor", k.real("rope.scale_linear", 0.0));
    if (factor < 0) k.bad(arch + ".rope.scaling.factor", "is negative");
    c.rope_scaling_factor = factor == 0 ? 1.0f : static_cast<float>(factor);
    c.rope_freq_scale = 1.0f / c.rope_scaling_factor;
    c.rope_original_context = k.find("rope.scaling.original_context_length")
                                  ? k.dim("rope.scaling.original_context_length", 0, int64_t(1) << 30)
                                  : c.n_ctx_train;
    c.has_rope_freqs = f.find_tensor("rope_freqs.weight") != nullptr;
    if (c.has_rope_freqs && c.rope_scaling == MOME_ROPE_SCALING_NONE) c.rope_scaling = MOME_ROPE_SCALING_LLAMA3;

    if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens")) {
        if (tokens->type != MOME_VALUE_TYPE_ARRAY || tokens->element_type != MOME_VALUE_TYPE_STRING)
            fail(MOME_STATUS_FORMAT_ERROR, format("%s: metadata 'tokenizer.ggml.tokens' is not an array of strings", f.path().c_str()));
        c.n_vocab = static_cast<int64_t>(tokens->count);
        if (c.n_vocab == 0) fail(MOME_STATUS_FORMAT_ERROR, format("%s: metadata 'tokenizer.ggml.tokens' is empty", f.path().c_str()));
    } else {
        c.n_vocab = k.dim("vocab_size", -1, int64_t(1) << 26);
    }
    c.bos_token_id = token_id(f, "tokenizer.ggml.bos_token_id", c.n_vocab);
    c.eos_token_id = token_id(f, "tokenizer.ggml.eos_token_id", c.n_vocab);

    c.tied_output = f.find_tensor("output.weight") == nullptr;
    const GgufTensor* q = f.find_tensor("blk.0.attn_q.weight");
    c.weight_type = q ? static_cast<mome_tensor_type>(q->type) : MOME_TENSOR_TYPE_F32;
    for (const GgufTensor& t : f.tensors()) c.n_params += static_cast<uint64_t>(t.n_elements);
    return c;
}

void check_llama_tensors(const GgufFile& f, const mome_llama_config& c) {
    auto expect = [&](const std::string& name, std::vector<int64_t> ne, bool required = true) {
        const GgufTensor* t = f.find_tensor(name);
        if (!t) {
            if (required) fail(MOME_STATUS_FORMAT_ERROR, format("%s: required tensor '%s' is missing", f.path().c_str(), name.c_str()));
            return;
        }
        bool same = t->n_dims == ne.size();
        for (size_t d = 0; same && d < ne.size(); ++d) same = t->ne[d] == ne[d];
        if (!same) {
            std::string want, have;
            for (int64_t d : ne) want += (want.empty() ? "" : ", ") + std::to_string(d);
            for (uint32_t d = 0; d < t->n_dims; ++d) have += (have.empty() ? "" : ", ") + std::to_string(t->ne[d]);
            fail(MOME_STATUS_FORMAT_ERROR, format("%s: tensor '%s' has shape [%s], expected [%s]", f.path().c_str(), name.c_str(),
                                                  have.c_str(), want.c_str()));
        }
        // Matrices may be block-quantized; vectors (norms, rope factors) stay F32/F16/BF16 as
        // llama.cpp's quantizer leaves them.
        const bool matrix = ne.size() == 2;
        if (!is_compute_type(t->type) && !(matrix && is_quantized_type(t->type)))
            fail(MOME_STATUS_UNSUPPORTED,
                 format("%s: tensor '%s' has type %s; Mome computes with F32, F16 and BF16%s", f.path().c_str(), name.c_str(),
                        tensor_type_name(t->type).c_str(), matrix ? ", Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K" : " vectors"));
    };
    const int64_t q_dim = c.n_head * c.head_dim, k_dim = c.n_head_kv * c.head_dim, v_dim = c.n_head_kv * c.head_dim_v;
    expect("token_embd.weight", {c.n_embd, c.n_vocab});
    expect("output_norm.weight", {c.n_embd});
    expect("output.weight", {c.n_embd, c.n_vocab}, false);
    expect("rope_freqs.weight", {c.n_rot / 2}, false);
    for (int64_t l = 0; l < c.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        expect(p + "attn_norm.weight", {c.n_embd});
        expect(p + "attn_q.weight", {c.n_embd, q_dim});
        expect(p + "attn_k.weight", {c.n_embd, k_dim});
        expect(p + "attn_v.weight", {c.n_embd, v_dim});
        expect(p + "attn_output.weight", {c.n_head * c.head_dim_v, c.n_embd});
        expect(p + "ffn_norm.weight", {c.n_embd});
        expect(p + "ffn_gate.weight", {c.n_embd, c.n_ff});
        expect(p + "ffn_up.weight", {c.n_embd, c.n_ff});
        expect(p + "ffn_down.weight", {c.n_ff, c.n_embd});
    }
}

}  // namespace mome
