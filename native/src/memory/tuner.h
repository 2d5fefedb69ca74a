// The ABI's opaque tuner (mome.h, "The tuner"): the facts of a memory tuning run, their
// cached routes and frozen-layer outputs, the sparse optimiser's state and the position of
// the run. Steps are batches of facts through memory/tuning.h's batch_step; checkpoints are
// memory/tuner_state.h's files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "memory/bank.h"
#include "memory/optimizer.h"
#include "memory/tuning.h"
#include "model/llama_weights.h"
#include "mome.h"

namespace mome {

// Where a run stands: saved in checkpoints.
struct TunerPosition {
    int32_t epoch = 0, position = 0;
    int64_t updates = 0;
    double epoch_loss = 0;  // sum over the facts of this epoch so far
    int32_t epoch_exact = 0;
};

mome_tuner_params default_tuner_params();

// The learning rate after `updates` earlier updates, `progress` (0..1) of the way through
// the epoch budget.
double learning_rate_at(const mome_tuner_params& p, double base_rate, int64_t updates, double progress);

}  // namespace mome

struct mome_tuner {
    mome_bank* bank = nullptr;
    mome_tuner_params params{};
    int n_threads = 1;
    std::unique_ptr<mome::Backend> backend;
    mome::LlamaWeights host_weights, weights;

    // Fact f is tokens [starts[f], starts[f+1]), its answer from answer_starts[f].
    std::vector<int32_t> tokens;
    std::vector<int64_t> starts{0};
    std::vector<int32_t> answer_starts;
    std::vector<mome::FactRoute> routes;  // cached once the router is frozen (empty: not yet)
    std::vector<std::vector<float>> prefixes;
    int64_t prefix_bytes = 0;

    // Experts: key 2e (A) and 2e + 1 (B), each [rank x n_embd]; key rows: key = row; W_q: key 0.
    mome::SparseOptimizer experts, key_rows, wq;
    mome::TunerPosition at;
    mome::GradientBuffers gradient_buffers;  // the last step's gradient memory, reused by the next
    bool stepped = false;

    mome_tuner(mome_bank& b, const mome_tuner_params& p);
    int32_t n_facts() const { return static_cast<int32_t>(answer_starts.size()); }
    mome::FactInput fact(int32_t f) const;
};

namespace mome {

void tuner_add_facts(mome_tuner& t, const int32_t* tokens, const int32_t* lengths, const int32_t* answer_starts, int32_t n);
mome_tuner_step_result tuner_step(mome_tuner& t);
int32_t tuner_evaluate(mome_tuner& t, uint8_t* exact);
mome_tuner_info tuner_info(const mome_tuner& t);

}  // namespace mome
