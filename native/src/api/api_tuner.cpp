// ABI: the tuner (memory/tuner.h, memory/tuner_state.h).
#include "core/abi_struct.h"
#include "core/error.h"
#include "memory/tuner.h"
#include "memory/tuner_state.h"

using namespace mome;

extern "C" {

mome_status mome_tuner_default_params(mome_tuner_params* out) {
    return guarded([&] { write_abi_struct(out, default_tuner_params(), "out is null"); });
}

mome_status mome_tuner_create(mome_bank* bank, const mome_tuner_params* params, mome_tuner** out) {
    return guarded([&] {
        require_arg(bank != nullptr && out != nullptr, "bank or out is null");
        *out = nullptr;
        const mome_tuner_params p = read_abi_struct(params, default_tuner_params(), "params is null");
        *out = new mome_tuner(*bank, p);
    });
}

void mome_tuner_free(mome_tuner* tuner) { delete tuner; }

mome_status mome_tuner_add_facts(mome_tuner* tuner, const int32_t* tokens, const int32_t* fact_lengths, const int32_t* answer_starts,
                                 int32_t n_facts) {
    return guarded([&] {
        require_arg(tuner != nullptr, "tuner is null");
        tuner_add_facts(*tuner, tokens, fact_lengths, answer_starts, n_facts);
    });
}

mome_status mome_tuner_step(mome_tuner* tuner, mome_tuner_step_result* out) {
    return guarded([&] {
        require_arg(tuner != nullptr && out != nullptr, "tuner or out is null");
        checked_struct_size(out);  // before the step changes anything
        write_abi_struct(out, tuner_step(*tuner), "out is null");
    });
}

mome_status mome_tuner_get_info(const mome_tuner* tuner, mome_tuner_info* out) {
    return guarded([&] {
        require_arg(tuner != nullptr && out != nullptr, "tuner or out is null");
        *out = tuner_info(*tuner);
    });
}

mome_status mome_tuner_evaluate(mome_tuner* tuner, uint8_t* exact, int32_t* n_exact) {
    return guarded([&] {
        require_arg(tuner != nullptr && n_exact != nullptr, "tuner or n_exact is null");
        *n_exact = tuner_evaluate(*tuner, exact);
    });
}

mome_status mome_tuner_checkpoint(mome_tuner* tuner, const char* bank_path, double elapsed_seconds) {
    return guarded([&] {
        require_arg(tuner != nullptr && bank_path != nullptr, "tuner or bank_path is null");
        tuner_checkpoint(*tuner, bank_path, elapsed_seconds);
    });
}

mome_status mome_tuner_resume(mome_tuner* tuner, const char* bank_path, mome_resume_outcome* outcome, double* elapsed_seconds) {
    return guarded([&] {
        require_arg(tuner != nullptr && bank_path != nullptr && outcome != nullptr && elapsed_seconds != nullptr,
                    "tuner, bank_path, outcome and elapsed_seconds are required");
        double elapsed = 0;
        *outcome = tuner_resume(*tuner, bank_path, elapsed);
        *elapsed_seconds = elapsed;
    });
}

}  // extern "C"
