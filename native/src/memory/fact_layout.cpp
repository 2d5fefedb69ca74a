#include "memory/fact_layout.h"

#include "core/error.h"

namespace mome {

int64_t check_fact_layout(const mome_llama_config& c, const int32_t* tokens, const int32_t* lengths, const int32_t* answer_starts,
                          int32_t n) {
    int64_t at = 0;
    for (int32_t f = 0; f < n; ++f) {
        const int64_t len = lengths[f], answer = answer_starts[f];
        if (len < 2 || len > c.n_ctx_train)
            fail(MOME_STATUS_OUT_OF_RANGE, format("fact %d is %lld tokens long; a fact needs 2..%lld (the model's context)", f + 1,
                                                  static_cast<long long>(len), static_cast<long long>(c.n_ctx_train)));
        if (answer < 1 || answer >= len)
            fail(MOME_STATUS_INVALID_ARGUMENT, format("fact %d: its answer starts at token %lld of %lld; a fact needs a question and at "
                                                      "least one answer token", f + 1, static_cast<long long>(answer),
                                                      static_cast<long long>(len)));
        for (int64_t i = 0; i < len; ++i)
            if (tokens[at + i] < 0 || tokens[at + i] >= c.n_vocab)
                fail(MOME_STATUS_OUT_OF_RANGE, format("fact %d: token %d at %lld is outside the vocabulary", f + 1, tokens[at + i],
                                                      static_cast<long long>(i)));
        at += len;
    }
    return at;
}

}  // namespace mome
