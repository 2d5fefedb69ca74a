// Enum values outside their enum, as a C caller may pass them, are refused with a named
// error and never loaded as the enum (under -fsanitize=undefined such a load fails the
// test: tests/sanitize/run.sh).
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "abi_c_caller.h"
#include "abi_structs.h"
#include "mome.h"
#include "tiny_model.h"

namespace {

std::string last_error() { return mome_last_error(); }

}  // namespace

TEST(AbiEnums, StatusAndTypeNamesOfUnknownValues) {
    EXPECT_STREQ(c_status_to_string(-99), "unknown status");
    EXPECT_STREQ(c_status_to_string(MOME_STATUS_FORMAT_ERROR), "format error");
    EXPECT_STREQ(c_tensor_type_name(1000), "unknown");
    EXPECT_STREQ(c_tensor_type_name(MOME_TENSOR_TYPE_BF16), "BF16");
}

TEST(AbiEnums, OperatorsRefuseUnknownTypesAndKinds) {
    const float w = 1.0f, x = 2.0f;
    float y = -1.0f;
    EXPECT_EQ(c_matmul(&w, 1000, &x, &y), MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(last_error().find("unknown type 1000"), std::string::npos) << last_error();
    EXPECT_EQ(y, -1.0f);

    std::vector<float> keys(16, 1.0f), query(4, 1.0f), weights(2);
    std::vector<int32_t> indices(2);
    mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, 4, 4, keys.data(), 2, 1.0f};
    c_set_router_enums(&r, 7, MOME_TENSOR_TYPE_F32);
    EXPECT_EQ(mome_route(&r, query.data(), 1, indices.data(), weights.data(), nullptr, 1), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("unknown kind 7"), std::string::npos) << last_error();
    c_set_router_enums(&r, MOME_ROUTER_KIND_FLAT, 1000);
    EXPECT_EQ(mome_route(&r, query.data(), 1, indices.data(), weights.data(), nullptr, 1), MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(last_error().find("unknown type 1000"), std::string::npos) << last_error();

    mome_lora_desc lora{sizeof(mome_lora_desc), MOME_TENSOR_TYPE_F32, 4, 4, 1, keys.data(), keys.data()};
    c_set_lora_type(&lora, 1000);
    const int64_t offsets[2] = {0, 1};
    std::vector<float> out(4, 0.0f);
    EXPECT_EQ(mome_lora_apply(&lora, query.data(), 1, offsets, 1, indices.data(), weights.data(), 1, 1.0f, out.data(), 1),
              MOME_STATUS_UNSUPPORTED);
    EXPECT_NE(last_error().find("unknown type 1000"), std::string::npos) << last_error();
}

TEST(AbiEnums, ParamsWithUnknownEnumsAreRefused) {
    mome_synthetic_params sp = sized<mome_synthetic_params>();
    ASSERT_EQ(mome_synthetic_preset("tiny", &sp), MOME_STATUS_OK);
    c_set_synthetic_enums(&sp, 9, MOME_TENSOR_TYPE_F32);
    const std::string never = std::string(::testing::TempDir()) + "mome_abi_enum_never.gguf";
    EXPECT_EQ(mome_synthetic_write(&sp, never.c_str()), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("rope_scaling"), std::string::npos) << last_error();
    c_set_synthetic_enums(&sp, MOME_ROPE_SCALING_NONE, 1000);
    EXPECT_EQ(mome_synthetic_write(&sp, never.c_str()), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("unknown type 1000"), std::string::npos) << last_error();

    TinyModel m("abi_enum");
    ASSERT_NE(m.model, nullptr);
    mome_bank_params bp = bank_defaults();
    bp.n_experts = 16, bp.key_dim = 8, bp.top_k = 2;
    mome_bank* bank = nullptr;
    c_set_bank_enums(&bp, 5, MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32);
    EXPECT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("routing 5"), std::string::npos) << last_error();
    c_set_bank_enums(&bp, MOME_ROUTING_MODE_SEQUENCE, 6, MOME_TENSOR_TYPE_F32);
    EXPECT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("router 6"), std::string::npos) << last_error();
    c_set_bank_enums(&bp, MOME_ROUTING_MODE_SEQUENCE, MOME_ROUTER_KIND_FLAT, 1000);
    EXPECT_EQ(mome_bank_create(m.model, &bp, &bank), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("weight_type"), std::string::npos) << last_error();
    EXPECT_EQ(bank, nullptr);

    mome_session_params sessp = session_defaults();
    sessp.n_ctx = 8;
    c_set_session_backend(&sessp, -3);
    mome_session* s = nullptr;
    EXPECT_EQ(mome_session_create(m.model, &sessp, &s), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("unknown backend -3"), std::string::npos) << last_error();
    EXPECT_EQ(s, nullptr);
}
