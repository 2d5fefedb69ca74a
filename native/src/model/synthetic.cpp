#include "model/synthetic.h"

#include <cmath>
#include <cstring>
#include <unordered_set>

#include "core/abi_enum.h"
#include "core/abi_struct.h"
#include "core/error.h"
#include "core/half.h"
#include "gguf/gguf_writer.h"
#include "gguf/tensor_types.h"

namespace mome {

namespace {

constexpr int64_t kControlTokens = 3;  // <unk>, <s>, </s>
constexpr int64_t kByteTokens = 256;
constexpr int64_t kMinNormalTokens = 32;

// llama.cpp token types.
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;

const char* const kWordStart = "\xE2\x96\x81";  // U+2581, SentencePiece's space marker

// Frequent English words (and words the fact templates use), so that ordinary text
// tokenizes into whole words rather than single characters.
const char* const kWords[] = {
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on", "be", "at", "by",
    "this", "had", "not", "are", "but", "from", "or", "have", "an", "they", "which", "one", "you", "were",
    "her", "all", "she", "there", "would", "their", "we", "him", "been", "has", "when", "who", "will", "more",
    "no", "if", "out", "so", "said", "what", "up", "its", "about", "into", "than", "them", "can", "only",
    "other", "new", "some", "could", "time", "these", "two", "may", "then", "do", "first", "any", "my",
    "now", "such", "like", "our", "over", "man", "me", "even", "most", "made", "after", "also", "did",
    "many", "before", "must", "through", "back", "years", "where", "much", "your", "way", "well", "down",
    "should", "because", "each", "just", "those", "people", "how", "too", "little", "state", "good",
    "very", "make", "world", "still", "own", "see", "men", "work", "long", "get", "here", "between",
    "both", "life", "being", "under", "never", "day", "same", "another", "know", "while", "last",
    "might", "us", "great", "old", "year", "off", "come", "since", "against", "go", "came", "right",
    "used", "take", "three", "question", "answer", "table", "column", "database", "stores", "holds",
    "which", "what", "where", "name", "city", "capital", "country", "number", "code", "value", "key",
    "select", "from", "where", "count", "user", "order", "id", "date", "price", "hello", "world",
};

class VocabBuilder {
public:
    explicit VocabBuilder(int64_t n_vocab) : n_vocab_(n_vocab) {}

    bool full() const { return static_cast<int64_t>(v_.tokens.size()) >= n_vocab_; }

    void add(const std::string& piece, int32_t type, float score) {
        if (full() || !seen_.insert(piece).second) return;
        v_.tokens.push_back(piece);
        v_.types.push_back(type);
        v_.scores.push_back(score);
    }

    // Normal pieces score by insertion order: earlier (shorter, more frequent) merges win.
    void add_piece(const std::string& piece) { add(piece, kTypeNormal, -static_cast<float>(next_rank_++)); }

    // A piece and every prefix of it, so that merging can reach it.
    void add_with_prefixes(const std::string& piece, size_t first_char_bytes) {
        for (size_t len = first_char_bytes + 1; len <= piece.size(); ++len) add_piece(piece.substr(0, len));
    }

    SyntheticVocab take() { return std::move(v_); }

private:
    int64_t n_vocab_;
    int64_t next_rank_ = 0;
    SyntheticVocab v_;
    std::unordered_set<std::string> seen_;
};

// Deterministic normal samples: splitmix64 seeded per tensor, Box-Muller.
class Normal {
public:
    explicit Normal(uint64_t seed) : state_(seed) {}
    double next() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = 0;
        while (u1 <= 0) u1 = uniform();
        const double u2 = uniform();
        const double r = std::sqrt(-2.0 * std::log(u1));
        spare_ = r * std::sin(2 * M_PI * u2);
        has_spare_ = true;
        return r * std::cos(2 * M_PI * u2);
    }

private:
    uint64_t next_u64() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

    uint64_t state_;
    double spare_ = 0;
    bool has_spare_ = false;
};

uint64_t name_hash(const std::string& s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    return h;
}

void store(uint8_t* dst, int64_t i, mome_tensor_type type, float x) {
    if (type == MOME_TENSOR_TYPE_F32) {
        std::memcpy(dst + 4 * i, &x, 4);
    } else {
        const uint16_t h = type == MOME_TENSOR_TYPE_F16 ? float_to_f16(x) : float_to_bf16(x);
        std::memcpy(dst + 2 * i, &h, 2);
    }
}

}  // namespace

// Llama 3.1 frequency factors, computed as Meta's reference code and llama.cpp's converter do.
std::vector<float> llama3_rope_factors(const mome_synthetic_params& p, int64_t n_rot) {
    std::vector<float> factors;
    const double low_wavelen = p.rope_original_context / p.rope_low_freq_factor;
    const double high_wavelen = p.rope_original_context / p.rope_high_freq_factor;
    for (int64_t i = 0; i < n_rot; i += 2) {
        const double freq = 1.0 / std::pow(static_cast<double>(p.rope_freq_base), static_cast<double>(i) / n_rot);
        const double wavelen = 2 * M_PI / freq;
        double factor = 1.0;
        if (wavelen > low_wavelen) {
            factor = p.rope_scaling_factor;
        } else if (wavelen >= high_wavelen) {
            const double smooth = (p.rope_original_context / wavelen - p.rope_low_freq_factor) /
                                  (p.rope_high_freq_factor - p.rope_low_freq_factor);
            factor = 1.0 / ((1 - smooth) / p.rope_scaling_factor + smooth);
        }
        factors.push_back(static_cast<float>(factor));
    }
    return factors;
}


SyntheticVocab synthetic_vocab(int64_t n_vocab) {
    VocabBuilder b(n_vocab);
    b.add("<unk>", kTypeUnknown, 0);
    b.add("<s>", kTypeControl, 0);
    b.add("</s>", kTypeControl, 0);
    for (int byte = 0; byte < 256; ++byte) b.add(format("<0x%02X>", byte), kTypeByte, 0);
    const std::string ws = kWordStart;
    b.add_piece(ws);
    for (char ch = '!'; ch <= '~'; ++ch) b.add_piece(std::string(1, ch));
    for (char ch = '!'; ch <= '~'; ++ch) b.add_piece(ws + ch);
    for (const char* word : kWords) b.add_with_prefixes(ws + word, ws.size());
    for (const char* word : kWords) b.add_with_prefixes(word, 0);
    // Filler: letter pairs, then triples, with and without the word-start marker.
    for (char a = 'a'; a <= 'z' && !b.full(); ++a)
        for (char c = 'a'; c <= 'z'; ++c) {
            b.add_piece(ws + a + c);
            b.add_piece(std::string() + a + c);
        }
    for (char a = 'a'; a <= 'z' && !b.full(); ++a)
        for (char c = 'a'; c <= 'z' && !b.full(); ++c)
            for (char d = 'a'; d <= 'z'; ++d) {
                b.add_piece(ws + a + c + d);
                b.add_piece(std::string() + a + c + d);
            }
    for (int64_t i = 0; !b.full(); ++i) b.add_piece(format("%s<filler%lld>", kWordStart, static_cast<long long>(i)));
    return b.take();
}

mome_synthetic_params synthetic_preset(const std::string& name) {
    mome_synthetic_params p = abi_struct<mome_synthetic_params>();
    p.rope_freq_base = 10000.0f;
    p.rms_norm_eps = 1e-5f;
    p.rope_scaling = MOME_ROPE_SCALING_NONE;
    p.rope_scaling_factor = 8.0f;
    p.rope_low_freq_factor = 1.0f;
    p.rope_high_freq_factor = 4.0f;
    p.weight_type = MOME_TENSOR_TYPE_F32;
    p.tied_output = 0;
    p.init_std = 0.02f;
    p.seed = 42;
    if (name == "tiny") {
        p.n_vocab = 512, p.n_ctx_train = 512, p.n_embd = 64, p.n_layer = 2, p.n_head = 4, p.n_head_kv = 2;
        p.head_dim = 16, p.n_ff = 192;
    } else if (name == "mini") {
        p.n_vocab = 4096, p.n_ctx_train = 1024, p.n_embd = 256, p.n_layer = 8, p.n_head = 8, p.n_head_kv = 4;
        p.head_dim = 32, p.n_ff = 768;
    } else if (name == "small") {
        p.n_vocab = 16384, p.n_ctx_train = 2048, p.n_embd = 768, p.n_layer = 12, p.n_head = 12, p.n_head_kv = 4;
        p.head_dim = 64, p.n_ff = 2048;
    } else {
        fail(MOME_STATUS_NOT_FOUND, format("no synthetic preset named '%s' (presets: tiny, mini, small)", name.c_str()));
    }
    p.rope_original_context = p.n_ctx_train;
    return p;
}

void check_synthetic_params(const mome_synthetic_params& p) {
    auto in = [](int64_t v, int64_t lo, int64_t hi, const char* name) {
        if (v < lo || v > hi)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("synthetic model: %s = %lld is outside %lld..%lld", name,
                                                      static_cast<long long>(v), static_cast<long long>(lo),
                                                      static_cast<long long>(hi)));
    };
    in(p.n_vocab, kControlTokens + kByteTokens + kMinNormalTokens, int64_t(1) << 20, "n_vocab");
    in(p.n_ctx_train, 1, int64_t(1) << 24, "n_ctx_train");
    in(p.n_embd, 1, int64_t(1) << 16, "n_embd");
    in(p.n_layer, 1, 1024, "n_layer");
    in(p.n_head, 1, 1024, "n_head");
    in(p.n_head_kv, 1, p.n_head, "n_head_kv");
    in(p.head_dim, 2, 1024, "head_dim");
    in(p.n_ff, 1, int64_t(1) << 18, "n_ff");
    if (p.n_head % p.n_head_kv != 0) fail(MOME_STATUS_INVALID_ARGUMENT, "synthetic model: n_head_kv must divide n_head");
    if (p.head_dim % 2 != 0) fail(MOME_STATUS_INVALID_ARGUMENT, "synthetic model: head_dim must be even (RoPE rotates pairs)");
    if (!(p.rope_freq_base > 0) || !(p.rms_norm_eps > 0) || !(p.init_std >= 0) || !std::isfinite(p.init_std))
        fail(MOME_STATUS_INVALID_ARGUMENT, "synthetic model: rope_freq_base and rms_norm_eps must be positive, init_std finite and >= 0");
    const uint32_t weight_type = static_cast<uint32_t>(abi_enum(p.weight_type));
    if (!is_compute_type(weight_type))
        fail(MOME_STATUS_INVALID_ARGUMENT, format("synthetic model: weight type %s is not F32, F16 or BF16",
                                                  tensor_type_name(weight_type).c_str()));
    const int32_t rope_scaling = abi_enum(p.rope_scaling);
    if (rope_scaling != MOME_ROPE_SCALING_NONE && rope_scaling != MOME_ROPE_SCALING_LINEAR && rope_scaling != MOME_ROPE_SCALING_LLAMA3)
        fail(MOME_STATUS_INVALID_ARGUMENT, "synthetic model: rope_scaling must be NONE, LINEAR or LLAMA3");
    if (p.rope_scaling != MOME_ROPE_SCALING_NONE && !(p.rope_scaling_factor >= 1))
        fail(MOME_STATUS_INVALID_ARGUMENT, "synthetic model: rope_scaling_factor must be >= 1");
    if (p.rope_scaling == MOME_ROPE_SCALING_LLAMA3 &&
        (p.rope_original_context <= 0 || !(p.rope_high_freq_factor > p.rope_low_freq_factor) || !(p.rope_low_freq_factor > 0)))
        fail(MOME_STATUS_INVALID_ARGUMENT,
             "synthetic model: llama3 scaling needs rope_original_context > 0 and 0 < low_freq_factor < high_freq_factor");
}

mome_llama_config synthetic_config(const mome_synthetic_params& p) {
    check_synthetic_params(p);
    mome_llama_config c{};
    c.n_vocab = p.n_vocab, c.n_ctx_train = p.n_ctx_train, c.n_embd = p.n_embd, c.n_layer = p.n_layer;
    c.n_head = p.n_head, c.n_head_kv = p.n_head_kv, c.head_dim = p.head_dim, c.head_dim_v = p.head_dim, c.n_ff = p.n_ff;
    c.n_rot = p.head_dim, c.rope_freq_base = p.rope_freq_base;
    c.rope_freq_scale = p.rope_scaling == MOME_ROPE_SCALING_LINEAR ? 1.0f / p.rope_scaling_factor : 1.0f;
    c.rms_norm_eps = p.rms_norm_eps, c.rope_scaling = p.rope_scaling, c.rope_scaling_factor = p.rope_scaling_factor;
    c.rope_original_context = p.rope_original_context, c.tied_output = p.tied_output;
    c.has_rope_freqs = p.rope_scaling == MOME_ROPE_SCALING_LLAMA3, c.weight_type = p.weight_type;
    c.bos_token_id = 1, c.eos_token_id = 2;
    return c;
}

void write_synthetic_model(const mome_synthetic_params& p, const std::string& path) {
    check_synthetic_params(p);
    const SyntheticVocab vocab = synthetic_vocab(p.n_vocab);
    GgufWriter w;
    w.set_string("general.architecture", "llama");
    w.set_string("general.name", format("mome-synthetic-%lldx%lld", static_cast<long long>(p.n_embd), static_cast<long long>(p.n_layer)));
    w.set_u64("general.seed", p.seed);
    w.set_u32("llama.context_length", static_cast<uint32_t>(p.n_ctx_train));
    w.set_u32("llama.embedding_length", static_cast<uint32_t>(p.n_embd));
    w.set_u32("llama.block_count", static_cast<uint32_t>(p.n_layer));
    w.set_u32("llama.feed_forward_length", static_cast<uint32_t>(p.n_ff));
    w.set_u32("llama.attention.head_count", static_cast<uint32_t>(p.n_head));
    w.set_u32("llama.attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
    if (p.n_head * p.head_dim != p.n_embd) {
        w.set_u32("llama.attention.key_length", static_cast<uint32_t>(p.head_dim));
        w.set_u32("llama.attention.value_length", static_cast<uint32_t>(p.head_dim));
    }
    w.set_u32("llama.rope.dimension_count", static_cast<uint32_t>(p.head_dim));
    w.set_f32("llama.rope.freq_base", p.rope_freq_base);
    w.set_f32("llama.attention.layer_norm_rms_epsilon", p.rms_norm_eps);
    if (p.rope_scaling == MOME_ROPE_SCALING_LINEAR) {
        w.set_string("llama.rope.scaling.type", "linear");
        w.set_f32("llama.rope.scaling.factor", p.rope_scaling_factor);
    }
    w.set_u32("llama.vocab_size", static_cast<uint32_t>(p.n_vocab));
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
    w.set_f32_array("tokenizer.ggml.scores", vocab.scores);
    w.set_i32_array("tokenizer.ggml.token_type", vocab.types);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
    w.set_bool("tokenizer.ggml.add_eos_token", false);

    auto random = [&](const std::string& name, std::vector<int64_t> ne, mome_tensor_type type, float mean, float std) {
        int64_t n = 1;
        for (int64_t d : ne) n *= d;
        const uint64_t seed = p.seed ^ name_hash(name);
        w.add_tensor(name, type, ne, [=](uint8_t* dst) {
            Normal normal(seed);
            for (int64_t i = 0; i < n; ++i) store(dst, i, type, mean + std * static_cast<float>(normal.next()));
        });
    };
    const mome_tensor_type wt = p.weight_type;
    const float s = p.init_std;
    const int64_t q_dim = p.n_head * p.head_dim, kv_dim = p.n_head_kv * p.head_dim;
    // A wider spread than the projections keeps logits of a random model informative.
    random("token_embd.weight", {p.n_embd, p.n_vocab}, wt, 0, 1.0f);
    if (p.rope_scaling == MOME_ROPE_SCALING_LLAMA3) {
        const std::vector<float> factors = llama3_rope_factors(p, p.head_dim);
        w.add_tensor("rope_freqs.weight", MOME_TENSOR_TYPE_F32, {static_cast<int64_t>(factors.size())},
                     [factors](uint8_t* dst) { std::memcpy(dst, factors.data(), factors.size() * sizeof(float)); });
    }
    for (int64_t l = 0; l < p.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        random(b + "attn_norm.weight", {p.n_embd}, MOME_TENSOR_TYPE_F32, 1.0f, 0.05f);
        random(b + "attn_q.weight", {p.n_embd, q_dim}, wt, 0, s);
        random(b + "attn_k.weight", {p.n_embd, kv_dim}, wt, 0, s);
        random(b + "attn_v.weight", {p.n_embd, kv_dim}, wt, 0, s);
        random(b + "attn_output.weight", {q_dim, p.n_embd}, wt, 0, s);
        random(b + "ffn_norm.weight", {p.n_embd}, MOME_TENSOR_TYPE_F32, 1.0f, 0.05f);
        random(b + "ffn_gate.weight", {p.n_embd, p.n_ff}, wt, 0, s);
        random(b + "ffn_up.weight", {p.n_embd, p.n_ff}, wt, 0, s);
        random(b + "ffn_down.weight", {p.n_ff, p.n_embd}, wt, 0, s);
    }
    random("output_norm.weight", {p.n_embd}, MOME_TENSOR_TYPE_F32, 1.0f, 0.05f);
    if (!p.tied_output) random("output.weight", {p.n_embd, p.n_vocab}, wt, 0, s);
    w.write(path);
}

}  // namespace mome
