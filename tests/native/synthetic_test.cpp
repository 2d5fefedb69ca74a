// The synthetic vocabulary must be usable by SentencePiece-style merging: every piece of
// two or more characters splits into two shorter pieces that are also in the vocabulary.
#include <gtest/gtest.h>
#include <unordered_set>

#include "abi_structs.h"
#include "model/synthetic.h"

using namespace mome;

namespace {
size_t utf8_chars(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}
}  // namespace

TEST(SyntheticVocab, EveryPieceIsReachableByMerges) {
    for (int64_t n : {291, 512, 4096, 16384}) {
        const SyntheticVocab v = synthetic_vocab(n);
        ASSERT_EQ(static_cast<int64_t>(v.tokens.size()), n);
        ASSERT_EQ(v.scores.size(), v.tokens.size());
        ASSERT_EQ(v.types.size(), v.tokens.size());
        EXPECT_EQ(v.tokens[0], "<unk>");
        EXPECT_EQ(v.tokens[3], "<0x00>");
        EXPECT_EQ(v.tokens[258], "<0xFF>");
        const std::unordered_set<std::string> all(v.tokens.begin(), v.tokens.end());
        EXPECT_EQ(all.size(), v.tokens.size()) << "duplicate pieces";
        for (size_t i = 259; i < v.tokens.size(); ++i) {
            const std::string& t = v.tokens[i];
            if (utf8_chars(t) < 2 || t.find("<filler") != std::string::npos) continue;
            bool split_found = false;
            for (size_t cut = 1; cut < t.size() && !split_found; ++cut) {
                if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;
                split_found = all.count(t.substr(0, cut)) && all.count(t.substr(cut));
            }
            EXPECT_TRUE(split_found) << "piece '" << t << "' cannot be built by merging";
        }
    }
}

TEST(SyntheticPreset, PresetsAreValidAndUnknownNamesAreRefused) {
    for (const char* name : {"tiny", "mini", "small"}) EXPECT_NO_THROW(check_synthetic_params(synthetic_preset(name)));
    EXPECT_THROW(synthetic_preset("huge"), std::exception);
}

// synthetic_config (models made without a file) reads as the written file does.
TEST(SyntheticConfig, MatchesTheConfigOfTheWrittenFile) {
    for (int variant = 0; variant < 3; ++variant) {
        mome_synthetic_params p = mome::synthetic_preset("tiny");
        if (variant == 1) p.rope_scaling = MOME_ROPE_SCALING_LINEAR, p.rope_scaling_factor = 4.0f, p.n_head = 6, p.head_dim = 24;
        if (variant == 2) p.rope_scaling = MOME_ROPE_SCALING_LLAMA3, p.rope_scaling_factor = 8.0f, p.rope_freq_base = 500000.0f, p.tied_output = 1;
        const std::string path = std::string(::testing::TempDir()) + "mome_synthetic_config_" + std::to_string(variant) + ".gguf";
        ASSERT_EQ(mome_synthetic_write(&p, path.c_str()), MOME_STATUS_OK) << mome_last_error();
        mome_model* model = nullptr;
        ASSERT_EQ(mome_model_open(path.c_str(), nullptr, &model), MOME_STATUS_OK) << mome_last_error();
        mome_llama_config file{};
        ASSERT_EQ(mome_model_get_config(model, &file), MOME_STATUS_OK);
        const mome_llama_config made = mome::synthetic_config(p);
        EXPECT_EQ(made.n_vocab, file.n_vocab);
        EXPECT_EQ(made.n_ctx_train, file.n_ctx_train);
        EXPECT_EQ(made.n_embd, file.n_embd);
        EXPECT_EQ(made.n_layer, file.n_layer);
        EXPECT_EQ(made.n_head, file.n_head);
        EXPECT_EQ(made.n_head_kv, file.n_head_kv);
        EXPECT_EQ(made.head_dim, file.head_dim);
        EXPECT_EQ(made.head_dim_v, file.head_dim_v);
        EXPECT_EQ(made.n_ff, file.n_ff);
        EXPECT_EQ(made.n_rot, file.n_rot);
        EXPECT_EQ(made.rope_freq_base, file.rope_freq_base);
        EXPECT_EQ(made.rope_freq_scale, file.rope_freq_scale);
        EXPECT_EQ(made.rms_norm_eps, file.rms_norm_eps);
        EXPECT_EQ(made.tied_output, file.tied_output);
        EXPECT_EQ(made.has_rope_freqs, file.has_rope_freqs);
        EXPECT_EQ(made.weight_type, file.weight_type);
        EXPECT_EQ(made.bos_token_id, file.bos_token_id);
        EXPECT_EQ(made.eos_token_id, file.eos_token_id);
        mome_model_free(model);
        std::remove(path.c_str());
    }
}
