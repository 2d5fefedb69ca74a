// A fact's logits as a user's session computes them (an independent forward for the tuning
// tests): the question first (a bank routes from it), then the answer; one row of `vocab`
// logits per token, row t predicting token t + 1.
#pragma once

#include <cstdint>
#include <gtest/gtest.h>
#include <vector>

#include "abi_structs.h"
#include "mome.h"

inline std::vector<float> session_logits(const mome_model* model, const mome_bank* bank, const std::vector<int32_t>& tokens,
                                         int32_t answer_start, int64_t vocab) {
    mome_session_params sp = session_defaults();
    sp.n_ctx = 64;
    sp.n_threads = 1;
    sp.bank = bank;
    mome_session* s = nullptr;
    EXPECT_EQ(mome_session_create(model, &sp, &s), MOME_STATUS_OK) << mome_last_error();
    const int64_t n = static_cast<int64_t>(tokens.size());
    std::vector<float> logits(static_cast<size_t>(n * vocab));
    std::vector<int32_t> pos(static_cast<size_t>(n)), seq(static_cast<size_t>(n), 0);
    std::vector<uint8_t> want(static_cast<size_t>(n), 1);
    for (int64_t t = 0; t < n; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(t);
    mome_batch question{sizeof(mome_batch), answer_start, tokens.data(), pos.data(), seq.data(), want.data()};
    EXPECT_EQ(mome_session_decode(s, &question, logits.data(), logits.size()), MOME_STATUS_OK) << mome_last_error();
    if (answer_start < n) {
        mome_batch answer{sizeof(mome_batch), static_cast<int32_t>(n - answer_start), tokens.data() + answer_start,
                          pos.data() + answer_start, seq.data(), want.data()};
        EXPECT_EQ(mome_session_decode(s, &answer, logits.data() + answer_start * vocab, logits.size() - answer_start * vocab),
                  MOME_STATUS_OK)
            << mome_last_error();
    }
    mome_session_free(s);
    return logits;
}
