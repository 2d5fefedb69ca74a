// The seed of a randomised native test. Each test has its own default so a plain run is
// reproducible; MOME_TEST_SEED=<n> replaces every default, to replay a failure or to try
// other inputs. The seed is printed with every failure through SCOPED_TRACE.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <random>
#include <string>

namespace mome_test {

inline unsigned seed_or(unsigned fallback) {
    const char* text = std::getenv("MOME_TEST_SEED");
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (*end != '\0') ADD_FAILURE() << "MOME_TEST_SEED=" << text << " is not a number";
    return static_cast<unsigned>(value);
}

// Says once per run which seeds are in force, so a log shows how to replay it.
class SeedEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        const char* text = std::getenv("MOME_TEST_SEED");
        if (text != nullptr && *text != '\0')
            std::printf("MOME_TEST_SEED=%s: every randomised test uses this seed\n", text);
        else
            std::printf("randomised tests use their default seeds; MOME_TEST_SEED=<n> replaces them\n");
    }
};

inline const bool seed_environment_registered = (::testing::AddGlobalTestEnvironment(new SeedEnvironment), true);

}  // namespace mome_test

// Reseeds an existing generator `name` with mome_test::seed_or(fallback) and traces the seed
// for the rest of the enclosing scope.
#define MOME_TEST_RESEED(name, fallback)                                           \
    const unsigned name##_seed = mome_test::seed_or(fallback);                     \
    SCOPED_TRACE("seed " + std::to_string(name##_seed) + " (MOME_TEST_SEED=" +     \
                 std::to_string(name##_seed) + " replays it)");                    \
    name.seed(name##_seed)

// Declares `std::mt19937 name` seeded with mome_test::seed_or(fallback) and traces the seed
// for the rest of the enclosing scope.
#define MOME_TEST_RNG(name, fallback)                                              \
    const unsigned name##_seed = mome_test::seed_or(fallback);                     \
    SCOPED_TRACE("seed " + std::to_string(name##_seed) + " (MOME_TEST_SEED=" +     \
                 std::to_string(name##_seed) + " replays it)");                    \
    std::mt19937 name(name##_seed)
