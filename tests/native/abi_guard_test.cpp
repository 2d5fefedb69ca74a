// The ABI protects itself: versioned structs refuse sizes they cannot read, the log callback
// receives the engine's messages, and the abort callback stops a long call, which fails
// with MOME_STATUS_CANCELLED and leaves its objects usable.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "abi_structs.h"
#include "mome.h"
#include "tiny_model.h"

namespace {

std::string last_error() { return mome_last_error(); }

// Both sizes a refusal names: the caller's and this library's.
void expect_size_refused(mome_status status, const char* name, uint32_t given, size_t current) {
    EXPECT_EQ(status, MOME_STATUS_INVALID_ARGUMENT);
    const std::string e = last_error();
    EXPECT_NE(e.find(std::string(name) + ".struct_size is " + std::to_string(given)), std::string::npos) << e;
    EXPECT_NE(e.find(std::to_string(current)), std::string::npos) << e;
}

}  // namespace

TEST(AbiStructs, EveryEntryPointRefusesASizeItCannotRead) {
    TinyModel m("abi_sizes");
    for (uint32_t bad : {0u, 4u}) {
        auto mp = model_defaults();
        mp.struct_size = bad;
        mome_model* model = nullptr;
        expect_size_refused(mome_model_open(m.path.c_str(), &mp, &model), "mome_model_params", bad, sizeof(mome_model_params));
        EXPECT_EQ(model, nullptr);
    }
    const uint32_t larger = sizeof(mome_session_params) + 8;
    auto sp = session_defaults();
    sp.struct_size = larger;
    mome_session* session = nullptr;
    expect_size_refused(mome_session_create(m.model, &sp, &session), "mome_session_params", larger, sizeof(mome_session_params));
    EXPECT_NE(last_error().find("newer mome.h"), std::string::npos) << last_error();
    EXPECT_EQ(session, nullptr);

    auto bp = bank_defaults();
    bp.struct_size = 3;
    mome_bank* bank = nullptr;
    expect_size_refused(mome_bank_create(m.model, &bp, &bank), "mome_bank_params", 3, sizeof(mome_bank_params));
    EXPECT_EQ(bank, nullptr);

    // Filling a struct needs its size too; the struct is left as it was.
    mome_session_params unsized{};
    unsized.n_ctx = 77;
    expect_size_refused(mome_session_default_params(&unsized), "mome_session_params", 0, sizeof(mome_session_params));
    EXPECT_EQ(unsized.n_ctx, 77);
    mome_synthetic_params syn{};
    expect_size_refused(mome_synthetic_preset("tiny", &syn), "mome_synthetic_params", 0, sizeof(mome_synthetic_params));
    expect_size_refused(mome_synthetic_write(&syn, "/nonexistent/never.gguf"), "mome_synthetic_params", 0,
                        sizeof(mome_synthetic_params));

    sp = session_defaults();
    ASSERT_EQ(mome_session_create(m.model, &sp, &session), MOME_STATUS_OK) << last_error();
    const int32_t token = 5, position = 0, seq = 0;
    mome_batch batch{sizeof(mome_batch) - 4, 1, &token, &position, &seq, nullptr};
    std::vector<float> logits(512);
    expect_size_refused(mome_session_decode(session, &batch, logits.data(), logits.size()), "mome_batch", sizeof(mome_batch) - 4,
                        sizeof(mome_batch));
    int32_t length = -1;
    ASSERT_EQ(mome_session_seq_length(session, 0, &length), MOME_STATUS_OK);
    EXPECT_EQ(length, 0);
    batch.struct_size = sizeof(mome_batch);
    EXPECT_EQ(mome_session_decode(session, &batch, logits.data(), logits.size()), MOME_STATUS_OK) << last_error();
    mome_session_free(session);

    const float keys[8] = {1, 2, 3, 4, 5, 6, 7, 8}, query[2] = {1, 1};
    int32_t idx[1];
    float w[1];
    mome_router_desc r{0, MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 2, keys, 1, 1.0f};
    expect_size_refused(mome_route(&r, query, 1, idx, w, nullptr, 1), "mome_router_desc", 0, sizeof(mome_router_desc));
    mome_lora_desc lora{sizeof(mome_lora_desc) + 1, MOME_TENSOR_TYPE_F32, 4, 2, 1, keys, keys};
    const int64_t offsets[2] = {0, 1};
    float out[2] = {0, 0};
    expect_size_refused(mome_lora_apply(&lora, query, 1, offsets, 1, idx, w, 1, 1.0f, out, 1), "mome_lora_desc",
                        sizeof(mome_lora_desc) + 1, sizeof(mome_lora_desc));
}

TEST(AbiStructs, DefaultsFillTheCallersStructAndNullParamsMeanTheDefaults) {
    TinyModel m("abi_defaults");
    const mome_session_params sp = session_defaults();
    EXPECT_EQ(sp.struct_size, sizeof(mome_session_params));
    EXPECT_EQ(sp.n_seq_max, 1);
    EXPECT_EQ(sp.backend, MOME_BACKEND_CPU);
    mome_session* session = nullptr;
    ASSERT_EQ(mome_session_create(m.model, nullptr, &session), MOME_STATUS_OK) << last_error();
    mome_session_free(session);
    mome_bank* bank = nullptr;
    auto bp = bank_defaults();
    bp.n_experts = 16, bp.top_k = 2, bp.key_dim = 8;
    ASSERT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_OK) << last_error();
    auto got = sized<mome_bank_params>();
    ASSERT_EQ(mome_bank_get_params(bank, &got), MOME_STATUS_OK) << last_error();
    EXPECT_EQ(got.struct_size, sizeof(mome_bank_params));
    EXPECT_EQ(got.n_experts, 16);
    got.struct_size = 1;
    expect_size_refused(mome_bank_get_params(bank, &got), "mome_bank_params", 1, sizeof(mome_bank_params));
    mome_bank_free(bank);
}

namespace {

struct LogRecord {
    std::vector<std::pair<mome_log_level, std::string>> messages;
};

void record_log(mome_log_level level, const char* message, void* user_data) {
    static_cast<LogRecord*>(user_data)->messages.emplace_back(level, message);
}

}  // namespace

TEST(LogCallback, ReceivesTheEnginesMessagesUntilReset) {
    TinyModel m("abi_log");
    LogRecord record;
    mome_set_log_callback(record_log, &record);
    mome_session* session = nullptr;
    ASSERT_EQ(mome_session_create(m.model, nullptr, &session), MOME_STATUS_OK) << last_error();
    mome_set_log_callback(nullptr, nullptr);
    ASSERT_EQ(record.messages.size(), 1u);
    EXPECT_EQ(record.messages[0].first, MOME_LOG_LEVEL_INFO);
    EXPECT_NE(record.messages[0].second.find("cpu-fast backend"), std::string::npos) << record.messages[0].second;
    mome_session_free(session);
    ASSERT_EQ(mome_session_create(m.model, nullptr, &session), MOME_STATUS_OK) << last_error();
    EXPECT_EQ(record.messages.size(), 1u);  // back to the default sink
    mome_session_free(session);
}

namespace {

// Asks to stop at its `stop_at`-th poll.
struct AbortAfter {
    int polls = 0;
    int stop_at = 0;
};

uint8_t abort_after(void* user_data) {
    auto* a = static_cast<AbortAfter*>(user_data);
    return ++a->polls >= a->stop_at ? 1 : 0;
}

std::vector<float> decode_all(mome_session* session, const std::vector<int32_t>& tokens, mome_status* status) {
    const int32_t n = static_cast<int32_t>(tokens.size());
    std::vector<int32_t> positions(tokens.size()), seqs(tokens.size(), 0);
    for (int32_t i = 0; i < n; ++i) positions[static_cast<size_t>(i)] = i;
    std::vector<float> logits(512, -1.0f);
    const mome_batch batch{sizeof(mome_batch), n, tokens.data(), positions.data(), seqs.data(), nullptr};
    *status = mome_session_decode(session, &batch, logits.data(), logits.size());
    return logits;
}

}  // namespace

TEST(AbortCallback, StopsADecodeWhichLeavesTheSessionUsable) {
    TinyModel m("abi_abort");
    auto sp = session_defaults();
    sp.n_ctx = 256, sp.n_threads = 2;
    mome_session* session = nullptr;
    ASSERT_EQ(mome_session_create(m.model, &sp, &session), MOME_STATUS_OK) << last_error();
    std::vector<int32_t> tokens(200);
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(3 + i * 7 % 500);

    AbortAfter a{0, 2};  // the tiny model has 2 layers: stop before the second
    mome_set_abort_callback(abort_after, &a);
    mome_status status = MOME_STATUS_OK;
    const std::vector<float> cancelled = decode_all(session, tokens, &status);
    mome_set_abort_callback(nullptr, nullptr);
    EXPECT_EQ(status, MOME_STATUS_CANCELLED);
    EXPECT_NE(last_error().find("cancelled"), std::string::npos) << last_error();
    EXPECT_EQ(a.polls, 2);
    EXPECT_EQ(cancelled, std::vector<float>(512, -1.0f)) << "a cancelled decode wrote logits";
    int32_t length = -1;
    ASSERT_EQ(mome_session_seq_length(session, 0, &length), MOME_STATUS_OK);
    EXPECT_EQ(length, 0);

    // The same decode now runs through and matches a fresh session's.
    const std::vector<float> after = decode_all(session, tokens, &status);
    ASSERT_EQ(status, MOME_STATUS_OK) << last_error();
    mome_session* fresh = nullptr;
    ASSERT_EQ(mome_session_create(m.model, &sp, &fresh), MOME_STATUS_OK) << last_error();
    const std::vector<float> want = decode_all(fresh, tokens, &status);
    ASSERT_EQ(status, MOME_STATUS_OK) << last_error();
    EXPECT_EQ(after, want);
    mome_session_free(fresh);
    mome_session_free(session);
}

TEST(AbortCallback, IsPerThreadAndStopsASaveBeforeItsCommit) {
    TinyModel m("abi_abort_save");
    auto bp = bank_defaults();
    bp.n_experts = 64, bp.top_k = 4, bp.key_dim = 8;
    mome_bank* bank = nullptr;
    AbortAfter a{0, 1};
    mome_set_abort_callback(abort_after, &a);
    EXPECT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_CANCELLED);
    EXPECT_EQ(bank, nullptr);
    // Another thread has no callback of its own: its call runs through.
    mome_status other = MOME_STATUS_INTERNAL_ERROR;
    std::thread([&] {
        mome_bank* b = nullptr;
        other = mome_bank_create(m.model, &bp, &b);
        mome_bank_free(b);
    }).join();
    EXPECT_EQ(other, MOME_STATUS_OK);
    mome_set_abort_callback(nullptr, nullptr);
    ASSERT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_OK) << last_error();

    const std::string path = std::string(::testing::TempDir()) + "mome_abort_" + std::to_string(getpid()) + ".mome";
    unlink(path.c_str());
    a = AbortAfter{0, 3};
    mome_set_abort_callback(abort_after, &a);
    EXPECT_EQ(mome_bank_save(bank, path.c_str()), MOME_STATUS_CANCELLED);
    mome_set_abort_callback(nullptr, nullptr);
    EXPECT_NE(access(path.c_str(), F_OK), 0) << "a cancelled save left a file";
    EXPECT_EQ(mome_bank_save(bank, path.c_str()), MOME_STATUS_OK) << last_error();
    mome_bank* loaded = nullptr;
    EXPECT_EQ(mome_bank_load(m.model, path.c_str(), &loaded), MOME_STATUS_OK) << last_error();
    mome_bank_free(loaded);
    unlink(path.c_str());
    mome_bank_free(bank);
}
