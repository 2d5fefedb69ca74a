// The Llama layer graph, written once over the backend interface: inference sessions (every
// backend) and memory tuning (every backend) run these functions and no other copy of the
// layer loop. Block l of the model:
//   xn = rms_norm(x) ; q, k, v = rope(xn Wq), rope(xn Wk), xn Wv ; cache <- k, v
//   h  = x + attention(q, cache) Wo
//   u  = rms_norm(h) ; x' = h + (silu(u Wgate) * (u Wup)) Wdown [+ memory delta(u)]
// All arrays are on the backend's device.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "model/llama_weights.h"
#include "mome.h"

namespace mome {

// A batch's integers on the device: token t is `tokens[t]` at `positions[t]` of sequence
// `seq_ids[t]`, and sees positions 0 .. positions[t] of its sequence. `calls` (host; null: the
// batch is one call) are the sizes of the session calls the batch stands for, in order: the
// block projections sum each token as that call would (Backend::matmul_calls), so a tuner's
// batch of facts computes what a session that prefills each question and then decodes token
// by token computes.
struct GraphBatch {
    int64_t n = 0;
    const int32_t* tokens = nullptr;
    const int32_t* positions = nullptr;
    const int32_t* seq_ids = nullptr;
    const int32_t* visible = nullptr;  // positions[t] + 1
    const std::vector<int64_t>* calls = nullptr;
};

// The batch's integers uploaded once (seq_ids null: every token in sequence 0).
class GraphInputs {
public:
    GraphInputs(Backend& backend, const int32_t* tokens, const int32_t* positions, const int32_t* seq_ids, int64_t n);
    const GraphBatch& batch() const { return batch_; }
    void set_calls(std::vector<int64_t> calls) {
        calls_ = std::move(calls);
        batch_.calls = &calls_;
    }

private:
    Buffer ints_;
    GraphBatch batch_;
    std::vector<int64_t> calls_;
};

// Keys (after RoPE) and values per layer: [n_seq x n_ctx x n_head_kv x head_dim].
struct KvCache {
    int64_t n_seq = 0, n_ctx = 0;
    std::vector<Buffer> k, v;
};
KvCache make_kv_cache(Backend& backend, const mome_llama_config& c, int64_t n_seq, int64_t n_ctx);

// What a block keeps for its backward (its keys and values stay in the KV cache).
struct LayerActivations {
    Buffer x, xn, q, attn, h, u, gate, up;
};

// The memory layer inside a block: given the MLP's normalised input u [n x n_embd], writes the
// delta added to the residual beside the MLP and returns true, or returns false when block
// `layer` has no memory layer.
class MemoryHook {
public:
    virtual ~MemoryHook() = default;
    virtual bool memory_delta(int64_t layer, const float* u, int64_t n, float* delta) = 0;
    // The backward of block `layer`'s delta (llama_backward_from): dout [n x n_embd] is the
    // gradient of the block's output; adds the delta's gradient with respect to u into du.
    // Blocks without a memory layer add nothing.
    virtual void memory_backward(int64_t /*layer*/, const float* /*dout*/, int64_t /*n*/, float* /*du*/) {}
};

// Fine-tuning's additions to the graph (all arrays F32 on the backend's device; a null one is
// not computed). Each projection Y = X W^T of a block may have a LoRA adapter beside it,
// Y += scale (X A^T) B^T with A [rank x W.cols] and B [W.rows x rank], applied by the forward
// and differentiated by the backward; the backward also accumulates weight gradients (dW
// shaped like W, dA like A, dB like B; norms' weights [n_embd]).
enum Projection { kProjWq, kProjWk, kProjWv, kProjWo, kProjGate, kProjUp, kProjDown, kProjections };
struct ProjectionTraining {
    Tensor a, b;  // the adapter (a.data null: none)
    float scale = 0;
    float *dw = nullptr, *da = nullptr, *db = nullptr;
};
struct LayerTraining {
    ProjectionTraining proj[kProjections];
    float *d_attn_norm = nullptr, *d_ffn_norm = nullptr;
};
struct GraphTraining {
    std::vector<LayerTraining> layers;  // one per block
    float *d_output = nullptr, *d_output_norm = nullptr;  // the loss head's (llama_loss)
};

RopeParams rope_params(const mome_llama_config& c, const LlamaWeights& w);

// x [n x n_embd] = the token embeddings of the batch.
void llama_embed(Backend& backend, const LlamaWeights& w, const GraphBatch& batch, float* x);

// Blocks [first, end) over the residual stream x [n x n_embd] in place, writing the batch's
// keys and values into `cache`. `memory` (may be null) adds memory layers; `keep` (may be
// null; else sized n_layer) receives the activations of every block run.
void llama_forward(Backend& backend, const mome_llama_config& c, const LlamaWeights& w, const GraphBatch& batch, KvCache& cache,
                   int64_t first, int64_t end, float* x, MemoryHook* memory, std::vector<LayerActivations>* keep,
                   const GraphTraining* training = nullptr);

// logits [n_rows x n_vocab] of the residual rows x[rows[i]] (rows on the device).
void llama_logits(Backend& backend, const mome_llama_config& c, const LlamaWeights& w, const float* x, const int32_t* rows, int64_t n_rows,
                  float* logits);

// Back through blocks [first, end) from dx (the gradient of their output, in place: it
// becomes the gradient of block `first`'s input), over whole sequences whose keys and values
// are in `cache` and whose activations `keep` holds: sequence s is the batch's tokens
// [seq_starts[s], seq_starts[s+1]) at positions 0, 1, ... of cache sequence s. Activation
// gradients only (the base is frozen), unless `training` asks for weight or adapter gradients
// (its adapters must be those the forward ran with); `memory` (may be null) goes back through
// the memory layers the forward's hook added.
void llama_backward_from(Backend& backend, const mome_llama_config& c, const LlamaWeights& w, const GraphBatch& batch,
                         const std::vector<int64_t>& seq_starts, const KvCache& cache, const std::vector<LayerActivations>& keep,
                         int64_t first, int64_t end, float* dx, MemoryHook* memory = nullptr, const GraphTraining* training = nullptr);

// The loss head over the answers of a batch of facts. Fact f's answer is predicted by the
// batch's rows [first_row, first_row + n_answer) (a fact's position answer_start-1 .. n-2),
// whose next tokens are `targets` (host; all facts' answers, in order). Each fact's loss is
// the mean cross-entropy over its answer; dx [n x n_embd] (zeros outside those rows) receives
// the gradient of the sum of the facts' losses, leaving out the facts whose answer greedy
// decoding already gets exactly when `skip_exact` is set; `training` (may be null) receives
// the gradients of the output projection and the final norm's weight. Only the rows whose
// gradient counts run the backward. With backward_above >= 0, when at most that many facts
// count, no backward runs and dx is left as it was (the caller has another plan for them).
struct AnswerSpan {
    int64_t first_row = 0, n_answer = 0;
};
// A fact is recalled exactly (exact()) when every answer token is the greedy argmax with a
// margin: its logit beats every other token's by at least kRecallMargin, so that another
// summation order of the same model (a session's one-token kernels, another backend, another
// thread count) decodes the same token. Checked through the row's loss -log p(target): when
// p_t >= s, every other p_j <= 1 - p_t, so l_t - l_j = log(p_t / p_j) >= log(s / (1 - s)); the
// bound p_t >= sigmoid(margin) is what kRecallMarginLoss = log(1 + e^-margin) expresses.
inline constexpr double kRecallMargin = 0.1;
inline constexpr double kRecallMarginLoss = 0.64439666007;  // log(1 + exp(-0.1))
struct LossResult {
    double loss = 0;
    int32_t n_answer = 0;
    int32_t n_correct = 0;  // answer tokens that are the greedy argmax
    int32_t n_sure = 0;     // of those, the ones that lead by the recall margin
    bool exact() const { return n_sure == n_answer; }
};
std::vector<LossResult> llama_loss(Backend& backend, const mome_llama_config& c, const LlamaWeights& w, const float* x, int64_t n,
                                   const std::vector<AnswerSpan>& spans, const std::vector<int32_t>& targets, bool skip_exact,
                                   float* dx, const GraphTraining* training = nullptr, int64_t backward_above = -1);

// The model's weights on the backend's device (the host views themselves on the CPU).
LlamaWeights weights_on(Backend& backend, const LlamaWeights& host);

}  // namespace mome
