// ABI: the fine-tuner (finetune/finetuner.h).
#include "core/abi_struct.h"
#include "core/error.h"
#include "finetune/finetuner.h"
#include "model/model.h"

using namespace mome;

extern "C" {

mome_status mome_finetuner_default_params(mome_finetuner_params* out) {
    return guarded([&] { write_abi_struct(out, default_finetuner_params(), "out is null"); });
}

mome_status mome_finetuner_create(const mome_model* model, const mome_finetuner_params* params, mome_finetuner** out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        *out = nullptr;
        const mome_finetuner_params p = read_abi_struct(params, default_finetuner_params(), "params is null");
        *out = new mome_finetuner(*model, p);
    });
}

void mome_finetuner_free(mome_finetuner* finetuner) { delete finetuner; }

mome_status mome_finetuner_add_facts(mome_finetuner* finetuner, const int32_t* tokens, const int32_t* fact_lengths,
                                     const int32_t* answer_starts, int32_t n_facts) {
    return guarded([&] {
        require_arg(finetuner != nullptr, "finetuner is null");
        finetuner_add_facts(*finetuner, tokens, fact_lengths, answer_starts, n_facts);
    });
}

mome_status mome_finetuner_step(mome_finetuner* finetuner, mome_finetuner_step_result* out) {
    return guarded([&] {
        require_arg(finetuner != nullptr && out != nullptr, "finetuner or out is null");
        checked_struct_size(out);  // before the step changes anything
        write_abi_struct(out, finetuner_step(*finetuner), "out is null");
    });
}

mome_status mome_finetuner_get_info(const mome_finetuner* finetuner, mome_finetuner_info* out) {
    return guarded([&] {
        require_arg(finetuner != nullptr && out != nullptr, "finetuner or out is null");
        *out = finetuner_info(*finetuner);
    });
}

mome_status mome_finetuner_evaluate(mome_finetuner* finetuner, uint8_t* exact, int32_t* n_exact) {
    return guarded([&] {
        require_arg(finetuner != nullptr && n_exact != nullptr, "finetuner or n_exact is null");
        *n_exact = finetuner_evaluate(*finetuner, exact);
    });
}

mome_status mome_finetuner_logits(mome_finetuner* finetuner, const int32_t* tokens, int32_t n_tokens, float* logits) {
    return guarded([&] {
        require_arg(finetuner != nullptr, "finetuner is null");
        finetuner_logits(*finetuner, tokens, n_tokens, logits);
    });
}

}  // extern "C"
