// A model's context_length is a claim about its training: a session left at the default
// n_ctx gets min(n_ctx_train, 4096) positions, never a cache a (hostile) file sizes.
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

#include "abi_structs.h"
#include "mome.h"

namespace {

int32_t default_context_of(int64_t n_ctx_train) {
    const std::string path = std::string(::testing::TempDir()) + "mome_ctx_" + std::to_string(n_ctx_train) + "_" +
                             std::to_string(getpid()) + ".gguf";
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    EXPECT_EQ(mome_synthetic_preset("tiny", &sp), MOME_STATUS_OK);
    sp.n_ctx_train = n_ctx_train;
    EXPECT_EQ(mome_synthetic_write(&sp, path.c_str()), MOME_STATUS_OK) << mome_last_error();
    mome_model* model = nullptr;
    EXPECT_EQ(mome_model_open(path.c_str(), nullptr, &model), MOME_STATUS_OK) << mome_last_error();
    unlink(path.c_str());
    mome_session_params p = sized<mome_session_params>();
    EXPECT_EQ(mome_session_default_params(&p), MOME_STATUS_OK);
    EXPECT_EQ(p.n_ctx, 0);
    p.n_threads = 1;
    mome_session* session = nullptr;
    int32_t n_ctx = -1;
    EXPECT_EQ(mome_session_create(model, &p, &session), MOME_STATUS_OK) << mome_last_error();
    if (session) EXPECT_EQ(mome_session_context_length(session, &n_ctx), MOME_STATUS_OK);
    mome_session_free(session);
    mome_model_free(model);
    return n_ctx;
}

}  // namespace

TEST(SessionContext, TheDefaultIsTheTrainingContextAtMost4096) {
    EXPECT_EQ(default_context_of(100), 100);
    EXPECT_EQ(default_context_of(4096), 4096);
    EXPECT_EQ(default_context_of(4097), 4096);
    // Before the cap this default asked the tiny model for an 8 GiB cache (2 layers x 4 GiB).
    EXPECT_EQ(default_context_of(int64_t(1) << 24), 4096);
}

TEST(SessionContext, TheContextLengthGetterRefusesNull) {
    int32_t n = 0;
    EXPECT_EQ(mome_session_context_length(nullptr, &n), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("null"), std::string::npos);
}
