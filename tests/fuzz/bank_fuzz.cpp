// libFuzzer harness of the bank file reader (safetensors): the header length, the JSON
// header, the bank's parameters in __metadata__, the tensor table (dtype, shape,
// data_offsets), the checksums. Bank files belong to one model: the tiny synthetic model of
// fuzz_support.h, written once per process. A bank that loads is then used: parameters,
// experts, routing and one decode step with the bank inside the model.
#include <cstdlib>
#include <string>
#include <vector>

#include "../native/abi_structs.h"
#include "fuzz_support.h"

namespace {

mome_model* g_model = nullptr;

void use_bank(const mome_bank* bank) {
    mome_bank_params p = sized<mome_bank_params>();
    mome_fuzz::check(mome_bank_get_params(bank, &p), "mome_bank_get_params");
    mome_llama_config c{};
    mome_fuzz::check(mome_model_get_config(g_model, &c), "mome_model_get_config");
    if (p.n_experts < 1 || p.top_k < 1 || p.top_k > p.n_experts || p.n_layers < 1) std::abort();
    std::vector<float> a(static_cast<size_t>(p.rank * c.n_embd)), b(a.size());
    mome_fuzz::check(mome_bank_get_expert(bank, 0, p.n_experts - 1, a.data(), b.data()), "mome_bank_get_expert");
    std::vector<float> query(static_cast<size_t>(p.key_dim), 0.5f);
    std::vector<int32_t> indices(static_cast<size_t>(p.top_k));
    std::vector<float> weights(indices.size());
    if (mome_bank_route(bank, 0, query.data(), 1, indices.data(), weights.data(), 1) == MOME_STATUS_OK)
        for (int32_t e : indices)
            if (e < 0 || e >= p.n_experts) std::abort();

    mome_session_params sp = session_defaults();
    sp.n_ctx = 4;
    sp.n_threads = 1;
    sp.bank = bank;
    mome_session* session = nullptr;
    mome_fuzz::check(mome_session_create(g_model, &sp, &session), "mome_session_create");
    const int32_t tokens[2] = {1, 300 % static_cast<int32_t>(c.n_vocab)}, positions[2] = {0, 1}, seqs[2] = {0, 0};
    mome_batch batch{sizeof(mome_batch), 2, tokens, positions, seqs, nullptr};
    std::vector<float> logits(static_cast<size_t>(c.n_vocab));
    (void)mome_session_decode(session, &batch, logits.data(), logits.size());
    mome_session_free(session);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const std::string model_path = mome_fuzz::input_path("bank") + ".gguf";
    const mome_synthetic_params mp = mome_fuzz::tiny_model_params();
    mome_fuzz::check(mome_synthetic_write(&mp, model_path.c_str()), "mome_synthetic_write");
    mome_fuzz::check(mome_model_open(model_path.c_str(), nullptr, &g_model), "mome_model_open");
    std::remove(model_path.c_str());  // the mapping stays valid
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = mome_fuzz::write_input("bank", data, size);
    mome_bank* bank = nullptr;
    if (mome_bank_load(g_model, path.c_str(), &bank) != MOME_STATUS_OK) {
        if (bank != nullptr || mome_last_error()[0] == '\0') std::abort();
        return 0;
    }
    use_bank(bank);
    mome_bank_free(bank);
    return 0;
}
