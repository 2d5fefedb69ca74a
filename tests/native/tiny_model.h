// A tiny synthetic Llama model written to a temporary file and opened, for the tests that
// need a model but no particular weights.
#pragma once

#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

#include "abi_structs.h"
#include "mome.h"

struct TinyModel {
    mome_model* model = nullptr;
    std::string path;

    explicit TinyModel(const char* name) {
        path = std::string(::testing::TempDir()) + "mome_" + name + "_" + std::to_string(getpid()) + ".gguf";
        mome_synthetic_params sp = sized<mome_synthetic_params>();
        EXPECT_EQ(mome_synthetic_preset("tiny", &sp), MOME_STATUS_OK);
        sp.init_std = 0.25f;
        EXPECT_EQ(mome_synthetic_write(&sp, path.c_str()), MOME_STATUS_OK) << mome_last_error();
        EXPECT_EQ(mome_model_open(path.c_str(), nullptr, &model), MOME_STATUS_OK) << mome_last_error();
    }
    ~TinyModel() {
        mome_model_free(model);
        unlink(path.c_str());
    }
    TinyModel(const TinyModel&) = delete;
    TinyModel& operator=(const TinyModel&) = delete;
};
