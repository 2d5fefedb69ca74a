// The synthetic vocabulary must be usable by SentencePiece-style merging: every piece of
// two or more characters splits into two shorter pieces that are also in the vocabulary.
#include <gtest/gtest.h>
#include <unordered_set>

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
