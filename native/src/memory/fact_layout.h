// Facts as the ABI hands them over (mome_tuner_add_facts, mome_finetuner_add_facts): fact i is
// lengths[i] tokens, one fact after the other, its answer from answer_starts[i].
#pragma once

#include <cstdint>

#include "mome.h"

namespace mome {

// Checks every fact against the model (2..n_ctx_train tokens, a question and at least one
// answer token, tokens inside the vocabulary), naming the first bad one; returns the tokens in all.
int64_t check_fact_layout(const mome_llama_config& c, const int32_t* tokens, const int32_t* lengths, const int32_t* answer_starts,
                          int32_t n);

}  // namespace mome
