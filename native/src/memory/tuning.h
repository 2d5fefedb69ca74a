// Memory tuning's core: one fact's loss and the gradients of its routed experts, by the
// layer graph's forward pass over the fact (model/llama_graph.h) keeping the activations of
// the blocks above the memory layer, then its backward (activation gradients only: the base
// model is frozen), on any backend.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "memory/bank.h"
#include "model/llama_weights.h"

namespace mome {

class ThreadPool;

// One fact: question then answer tokens; optionally a cached route (both null: route).
struct FactInput {
    const int32_t* tokens = nullptr;
    int64_t n = 0;
    int64_t answer_start = 0;
    const int32_t* route_indices = nullptr;
    const float* route_weights = nullptr;
    const float* prefix = nullptr;  // [2 x n x n_embd]: see mome_fact_desc
    float* prefix_out = nullptr;
    // The backend to run the step on and the model's weights there (a GPU session's), or
    // both null: the CPU (cpu-fast over the caller's pool).
    Backend* backend = nullptr;
    const LlamaWeights* weights = nullptr;
};

// A fact's route (best first; [n x top_k] when the bank routes per token) and its answer's loss.
struct FactRoute {
    std::vector<int32_t> indices;
    std::vector<float> weights;
};

struct FactGradients : FactRoute {
    std::vector<int32_t> experts;  // the distinct routed experts, in the order of da and db's row blocks
    std::vector<float> da, db;     // [experts x rank x n_embd]
    std::vector<float> dwq;        // [key_dim x n_embd], when router gradients were asked for
    std::vector<float> dkeys;      // [top_k x key_dim] in route order (see mome_fact_grads)
    double loss = 0;
    int32_t n_answer = 0;
    int32_t n_correct = 0;
    int32_t n_sure = 0;  // as LossResult's
    bool exact() const { return n_sure == n_answer; }
};

// One memory layer's expert gradients: its distinct routed experts and their dA, dB
// [experts x rank x n_embd].
struct SlotGradients {
    int slot = 0;
    std::vector<int32_t> experts;
    std::vector<float> da, db;
};

// One step over a batch of facts, packed as one sequence each into one graph batch: every
// projection runs over all the batch's tokens at once.
struct BatchStep {
    struct Fact {
        FactRoute route;
        double loss = 0;  // mean cross-entropy over the answer
        int32_t n_answer = 0, n_correct = 0, n_sure = 0;  // as LossResult's
        bool exact() const { return n_sure == n_answer; }
    };
    std::vector<Fact> facts;
    // The distinct experts of all routes, and the gradient of the sum of the facts' losses
    // (leaving out exact facts when asked) for each: [experts x rank x n_embd]. Empty when no
    // backward ran (forward only, or every fact exact).
    std::vector<int32_t> experts;
    std::vector<float> da, db;
    // The same for each memory layer above the lowest (the routed experts above are the
    // lowest layer's), in the order of their blocks from the top down.
    std::vector<SlotGradients> upper;
};

struct BatchOptions {
    bool backward = true;    // false: the forward, losses and exactness only
    bool skip_exact = false;  // exact facts add no gradient (and no backward runs when all are)
};

// Gradient buffers a caller hands back after a step, for the next step's gradients to reuse:
// a step then writes memory it already has instead of faulting in fresh pages.
struct GradientBuffers {
    std::vector<float> da, db;
};

// The batch's facts must all run on one backend (their `backend` and `weights` fields are
// read from the first fact); each may have a cached route and a cached prefix.
BatchStep batch_step(const mome_bank& bank, const std::vector<FactInput>& facts, const BatchOptions& options, ThreadPool& pool,
                     int n_threads, GradientBuffers* reuse = nullptr);

// The lowest memory layer's input (the MLP's normalised input in its block) for every token
// [n x n_embd], by the frozen layers below it.
std::vector<float> memory_layer_inputs(const mome_bank& bank, const int32_t* tokens, int64_t n, ThreadPool& pool);

// The mean of the lowest memory layer's input over a question's tokens: what its routing
// starts from, before centring and W_q.
std::vector<float> question_mean(const mome_bank& bank, const int32_t* tokens, int64_t n, ThreadPool& pool);

// A fact's route in memory layer `slot`: its cached one, or from the mean of that layer's
// input u0 over the question's tokens, as a session asking the question would. `query` and `centred` (may be
// null) receive W_q's input and output, for the router's gradients.
void route_fact(const mome_bank& bank, int slot, const FactInput& fact, const float* u0, ThreadPool& pool, int n_threads,
                FactRoute& route, std::vector<float>* query, std::vector<float>* centred);

// One fact's step (a batch of one, its gradient kept even when exact), with the router's
// gradients when asked (live routing only).
FactGradients fact_gradients(const mome_bank& bank, const FactInput& fact, bool router_gradients, ThreadPool& pool,
                             int n_threads);

}  // namespace mome
