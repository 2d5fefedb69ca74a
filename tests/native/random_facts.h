// Random facts for the tuning tests: question and answer tokens of varied lengths (tiny's
// vocabulary is 512), each fact alone and all of them packed as the tuner's ABI takes them.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

struct Facts {
    std::vector<int32_t> tokens, lengths, answers;
    std::vector<std::vector<int32_t>> each;
};

// Random facts of different lengths (tiny's vocabulary is 512).
inline Facts random_facts(int count, uint32_t seed) {
    std::mt19937 rng(seed);
    Facts f;
    for (int i = 0; i < count; ++i) {
        const int question = 3 + static_cast<int>(rng() % 6), answer = 1 + static_cast<int>(rng() % 4);
        std::vector<int32_t> t;
        for (int j = 0; j < question + answer; ++j) t.push_back(static_cast<int32_t>(1 + rng() % 500));
        f.tokens.insert(f.tokens.end(), t.begin(), t.end());
        f.lengths.push_back(question + answer);
        f.answers.push_back(question);
        f.each.push_back(t);
    }
    return f;
}
