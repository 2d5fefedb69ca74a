// The locality gate of a memory layer: the experts add their delta only to inputs that carry
// evidence of a memorised fact, and exactly nothing elsewhere.
//
// A layer's gate holds one signature per memorised routing query (the unit vector of
// W_q (u - centre): per sequence, of the question's mean input; per token, of the inputs at
// the positions whose next token is trained, from the last question token to the last answer
// token) and a threshold. The evidence of a query is its largest cosine with a signature; a
// route whose evidence is below the threshold gets zero weights, so the grouped-LoRA delta is
// exactly zero (as GRACE defers to the base model outside its codebook's radius). A memorised
// question meets its own signature at cosine 1; the tuner sets the threshold between that and
// the evidence of negatives (unrelated text, near-miss questions), as WISE calibrates its
// routing threshold with a margin.
#pragma once

#include <cstdint>

#include "memory/bank.h"

namespace mome {

class ThreadPool;

// Evidence of `n` routing queries ([n x key_dim]) against memory layer `slot`'s signatures:
// the largest cosine, or -1 when the layer has none or the query is zero.
void gate_evidence(const mome_bank& bank, int slot, const float* queries, int64_t n, float* evidence, int n_threads);

// Zeroes the route weights ([n x top_k]) of queries whose evidence is below the layer's
// threshold. A layer whose gate is off (threshold <= -1) leaves every route as it is.
void apply_gate(const mome_bank& bank, int slot, const float* queries, int64_t n, float* weights, int n_threads);

// Adds the unit vectors of `n` queries to the layer's signatures, skipping any that is
// bit-identical to one it holds (the same fact added twice). Zero queries are refused.
void add_gate_signatures(const mome_bank& bank, MemoryLayer& layer, const float* queries, int64_t n);

// The routing queries a fact's signatures are made of (see above), [rows x key_dim].
std::vector<float> fact_gate_queries(const mome_bank& bank, const int32_t* tokens, int64_t n, int64_t answer_start,
                                     ThreadPool& pool, int64_t* rows);

// Routing queries of a text as a session would make them (slot 0): per sequence, one from the
// mean input over all its tokens; per token, one per token.
std::vector<float> text_queries(const mome_bank& bank, const int32_t* tokens, int64_t n, ThreadPool& pool, int64_t* rows);

bool gate_is_on(const MemoryLayer& layer);

}  // namespace mome
