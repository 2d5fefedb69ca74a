// The ABI's opaque fine-tuner (mome.h, "The fine-tuner"): the usual alternatives to memory
// tuning, trained on the same facts with the same loss (mean cross-entropy over each answer,
// exact facts skipped) so that `mome bench versus` compares like with like:
//   LoRA: adapters of rank r beside q, k, v, o, gate, up and down of every block (A random,
//         B zero, so training starts from the base model), the base weights frozen;
//   full: every weight of the model (embeddings, norms, projections, output head), as a
//         private F32 copy: the model itself is never changed.
// Both through the layer graph (model/llama_graph.h) with its weight-gradient additions, and
// dense AdamW (memory/optimizer.h's update, one state per parameter tensor).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "memory/optimizer.h"
#include "model/llama_graph.h"
#include "model/llama_weights.h"
#include "mome.h"

namespace mome {

mome_finetuner_params default_finetuner_params();

// One trained tensor: its values and gradient on the backend's device, its optimiser state.
struct TrainedTensor {
    Buffer value, grad;
    int64_t rows = 0, cols = 0;
    SparseOptimizer optimizer;
    TrainedTensor(Backend& backend, const OptimizerParams& o, int64_t rows, int64_t cols);
    int64_t count() const { return rows * cols; }
    Tensor view() const;
};

}  // namespace mome

struct mome_finetuner {
    const mome_model* model = nullptr;
    mome_finetuner_params params{};
    int n_threads = 1;
    std::unique_ptr<mome::Backend> backend;
    mome::LlamaWeights host_weights, weights;  // weights: what the graph runs (base or trained copies)
    std::vector<std::unique_ptr<mome::TrainedTensor>> trained;
    mome::GraphTraining apply;  // the adapters only (forward passes)
    mome::GraphTraining train;  // the adapters and every gradient (steps)
    float* d_token_embd = nullptr;  // full fine-tuning: the embedding table's gradient

    std::vector<int32_t> tokens;
    std::vector<int64_t> starts{0};
    std::vector<int32_t> answer_starts;
    int32_t position = 0;
    int64_t updates = 0;

    mome_finetuner(const mome_model& m, const mome_finetuner_params& p);
    int32_t n_facts() const { return static_cast<int32_t>(answer_starts.size()); }
};

namespace mome {

void finetuner_add_facts(mome_finetuner& t, const int32_t* tokens, const int32_t* lengths, const int32_t* answer_starts, int32_t n);
// The gradients of facts [first, first + count) into every trained tensor's `grad` (zeroed
// first; exact facts left out when `skip_exact`), and each fact's loss: what a step updates from.
std::vector<LossResult> finetuner_gradients(mome_finetuner& t, int32_t first, int32_t count, bool skip_exact);
mome_finetuner_step_result finetuner_step(mome_finetuner& t);
int32_t finetuner_evaluate(mome_finetuner& t, uint8_t* exact);
mome_finetuner_info finetuner_info(const mome_finetuner& t);
// logits [n x n_vocab] of every position of one sequence, with the trained weights.
void finetuner_logits(mome_finetuner& t, const int32_t* tokens, int64_t n, float* logits);

}  // namespace mome
