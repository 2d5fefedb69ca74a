// Expert indices are int32 everywhere (routes, LoRA, tuning): banks and routers with more
// experts than an int32 can name are refused up front, naming the limit, before any table
// is sized or read.
#include <climits>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "abi_structs.h"
#include "mome.h"
#include "tiny_model.h"

namespace {

bool names_the_limit(const std::string& message) {
    return message.find("n_experts") != std::string::npos && message.find(std::to_string(INT32_MAX)) != std::string::npos &&
           message.find("int32") != std::string::npos;
}

}  // namespace

TEST(ExpertLimits, RouterRefusesMoreExpertsThanInt32Indices) {
    std::vector<float> keys(16, 1.0f), query(4, 1.0f), weights(2, -1.0f);
    std::vector<int32_t> indices(2, -1);
    // top_k above 65536 is refused too, but only after n_experts: the message must name n_experts.
    for (int64_t n : {int64_t(INT32_MAX) + 1, int64_t(1) << 32, int64_t(1) << 40}) {
        const mome_router_desc r{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, n, 4, keys.data(), 65537, 1.0f};
        EXPECT_EQ(mome_route(&r, query.data(), 1, indices.data(), weights.data(), nullptr, 1), MOME_STATUS_INVALID_ARGUMENT);
        EXPECT_TRUE(names_the_limit(mome_last_error())) << mome_last_error();
    }
    EXPECT_EQ(indices[0], -1);
    EXPECT_EQ(weights[0], -1.0f);
    // The largest count an int32 index can name passes the shape check (it fails later, on top_k).
    const mome_router_desc edge{sizeof(mome_router_desc), MOME_ROUTER_KIND_FLAT, MOME_TENSOR_TYPE_F32, INT32_MAX, 4, keys.data(), 65537, 1.0f};
    EXPECT_EQ(mome_route(&edge, query.data(), 1, indices.data(), weights.data(), nullptr, 1), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("top_k"), std::string::npos) << mome_last_error();
}

TEST(ExpertLimits, BankRefusesMoreExpertsThanInt32Indices) {
    TinyModel m("expert_limits");
    ASSERT_NE(m.model, nullptr);
    mome_bank_params p = bank_defaults();
    p.key_dim = 8;
    // A rank this large would be refused by the size check too; n_experts must be named first.
    p.rank = 4096;
    mome_bank* bank = nullptr;
    for (int64_t n : {int64_t(INT32_MAX) + 1, int64_t(1) << 32}) {
        p.n_experts = n;
        EXPECT_EQ(mome_bank_create(m.model, &p, &bank), MOME_STATUS_INVALID_ARGUMENT);
        EXPECT_TRUE(names_the_limit(mome_last_error())) << mome_last_error();
        EXPECT_EQ(bank, nullptr);
    }
    p.n_experts = INT32_MAX;
    EXPECT_EQ(mome_bank_create(m.model, &p, &bank), MOME_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mome_last_error()).find("GiB"), std::string::npos) << mome_last_error();
    EXPECT_EQ(bank, nullptr);
}
