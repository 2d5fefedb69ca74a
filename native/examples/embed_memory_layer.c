/* Embedding Mome's memory layer in another engine through the C ABI.
 *
 * A host server (llama.cpp, vLLM, ...) computes its own hidden states; this program stands
 * in for it with a small layer of its own. It then adds the memory layer of a Mome bank to
 * those hidden states with the standalone operators, exactly as a Mome session does inside
 * its forward pass (one route per sequence, from the mean of the sequence's inputs):
 *
 *   q_s     = W_q (mean_t u_t - centre)              the host's projection, per sequence
 *   e, w    = mome_route(keys, q_s)                  top-k experts and softmax weights
 *   out_t  += (alpha / rank) sum_j w_j B_e (A_e u_t)  mome_lora_apply, segmented per sequence
 *
 * and checks the result against a plain loop over the same tables.
 *
 * Usage: embed_memory_layer MODEL.gguf BANK.mome      (exit 0 when the results agree) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mome.h"

#define CHECK(call)                                                                         \
    do {                                                                                    \
        mome_status status_ = (call);                                                       \
        if (status_ != MOME_STATUS_OK) {                                                    \
            fprintf(stderr, "%s failed: %s: %s\n", #call, mome_status_to_string(status_),   \
                    mome_last_error());                                                     \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)

static float* floats(int64_t n) {
    float* p = calloc((size_t)n, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory (%lld floats)\n", (long long)n);
        exit(1);
    }
    return p;
}

/* The host's own layer: h = x + tanh(W x), with weights of its own (a fixed pseudo-random W). */
static void host_layer(const float* x, int64_t n_tokens, int64_t dim, float* h) {
    uint32_t seed = 12345u;
    float* w = floats(dim * dim);
    for (int64_t i = 0; i < dim * dim; ++i) {
        seed = seed * 1664525u + 1013904223u;
        w[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) / sqrtf((float)dim);
    }
    for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < dim; ++r) {
            float acc = 0.0f;
            for (int64_t c = 0; c < dim; ++c) acc += w[r * dim + c] * x[t * dim + c];
            h[t * dim + r] = x[t * dim + r] + tanhf(acc);
        }
    free(w);
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf BANK.mome\n", argv[0]);
        return 2;
    }
    if (mome_abi_version() != MOME_ABI_VERSION) {
        fprintf(stderr, "libmome has ABI version %u; this program was built for %d\n", mome_abi_version(), MOME_ABI_VERSION);
        return 1;
    }
    mome_model* model = NULL;
    mome_bank* bank = NULL;
    mome_model_params model_params;
    memset(&model_params, 0, sizeof model_params);
    model_params.struct_size = sizeof model_params;
    CHECK(mome_model_default_params(&model_params));
    CHECK(mome_model_open(argv[1], &model_params, &model));
    CHECK(mome_bank_load(model, argv[2], &bank));
    mome_llama_config config;
    mome_bank_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    CHECK(mome_model_get_config(model, &config));
    CHECK(mome_bank_get_params(bank, &p));
    const int64_t dim = config.n_embd, kd = p.key_dim, n_experts = p.n_experts;
    const int32_t k = p.top_k, rank = p.rank;

    /* The bank's tables of memory layer 0 as F32, for the host to hand to the operators. */
    const int64_t key_rows = p.router == MOME_ROUTER_KIND_PRODUCT ? 2 * (int64_t)llround(sqrt((double)n_experts)) : n_experts;
    const int64_t key_row_len = p.router == MOME_ROUTER_KIND_PRODUCT ? kd / 2 : kd;
    float *wq = floats(kd * dim), *centre = floats(dim), *keys = floats(key_rows * key_row_len);
    float *a = floats(n_experts * rank * dim), *b = floats(n_experts * rank * dim);
    CHECK(mome_bank_get_wq(bank, 0, wq));
    CHECK(mome_bank_get_centre(bank, 0, centre));
    CHECK(mome_bank_get_key_rows(bank, 0, 0, key_rows, keys));
    for (int64_t e = 0; e < n_experts; ++e) CHECK(mome_bank_get_expert(bank, 0, e, a + e * rank * dim, b + e * rank * dim));

    /* Two sequences of 3 and 2 tokens: the host's inputs and its layer's hidden states. */
    enum { N_SEQ = 2, N_TOKENS = 5 };
    const int64_t offsets[N_SEQ + 1] = {0, 3, 5};
    float *x = floats(N_TOKENS * dim), *u = floats(N_TOKENS * dim), *out = floats(N_TOKENS * dim);
    uint32_t seed = 7u;
    for (int64_t i = 0; i < N_TOKENS * dim; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    host_layer(x, N_TOKENS, dim, u);
    for (int64_t i = 0; i < N_TOKENS * dim; ++i) out[i] = u[i];

    /* The host projects one query per sequence; mome_route picks its experts. */
    float* queries = floats(N_SEQ * kd);
    for (int s = 0; s < N_SEQ; ++s)
        for (int64_t r = 0; r < kd; ++r) {
            float acc = 0.0f;
            for (int64_t c = 0; c < dim; ++c) {
                float mean = 0.0f;
                for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t) mean += u[t * dim + c];
                mean /= (float)(offsets[s + 1] - offsets[s]);
                acc += wq[r * dim + c] * (mean - centre[c]);
            }
            queries[s * kd + r] = acc;
        }
    mome_router_desc router;
    memset(&router, 0, sizeof router);
    router.struct_size = sizeof router;
    router.kind = p.router;
    router.key_type = MOME_TENSOR_TYPE_F32;
    router.n_experts = n_experts;
    router.key_dim = kd;
    router.keys = keys;
    router.top_k = k;
    router.temperature = p.temperature;
    int32_t* indices = calloc((size_t)(N_SEQ * k), sizeof(int32_t));
    int32_t* bank_indices = calloc((size_t)(N_SEQ * k), sizeof(int32_t));
    float *weights = floats(N_SEQ * k), *bank_weights = floats(N_SEQ * k);
    CHECK(mome_route(&router, queries, N_SEQ, indices, weights, NULL, 0));
    /* The bank routes the same queries itself: the host's copy of the keys must agree. */
    CHECK(mome_bank_route(bank, 0, queries, N_SEQ, bank_indices, bank_weights, 0));
    for (int i = 0; i < N_SEQ * k; ++i)
        if (indices[i] != bank_indices[i]) {
            fprintf(stderr, "route %d: mome_route picked expert %d, the bank %d\n", i, indices[i], bank_indices[i]);
            return 1;
        }

    /* The memory layer's delta, added to the host's hidden states. */
    mome_lora_desc experts;
    memset(&experts, 0, sizeof experts);
    experts.struct_size = sizeof experts;
    experts.weight_type = MOME_TENSOR_TYPE_F32;
    experts.n_experts = n_experts;
    experts.dim = dim;
    experts.rank = rank;
    experts.a = a;
    experts.b = b;
    const float scale = p.alpha / (float)rank;
    CHECK(mome_lora_apply(&experts, u, N_TOKENS, offsets, N_SEQ, indices, weights, k, scale, out, 0));

    /* The same sum as a plain loop. */
    double max_diff = 0.0, max_delta = 0.0;
    for (int s = 0; s < N_SEQ; ++s)
        for (int64_t t = offsets[s]; t < offsets[s + 1]; ++t)
            for (int64_t o = 0; o < dim; ++o) {
                double delta = 0.0;
                for (int j = 0; j < k; ++j) {
                    const int64_t e = indices[s * k + j];
                    for (int r = 0; r < rank; ++r) {
                        double dot = 0.0;
                        for (int64_t c = 0; c < dim; ++c) dot += (double)a[(e * rank + r) * dim + c] * u[t * dim + c];
                        delta += weights[s * k + j] * (double)b[(e * rank + r) * dim + o] * dot;
                    }
                }
                const double expected = u[t * dim + o] + scale * delta;
                max_diff = fmax(max_diff, fabs(expected - out[t * dim + o]));
                max_delta = fmax(max_delta, fabs(scale * delta));
            }
    printf("memory layer on %d host tokens (%d sequences, top-%d of %lld experts, rank %d): max |delta| %.3g, max |diff| vs loop %.3g\n",
           N_TOKENS, N_SEQ, k, (long long)n_experts, rank, max_delta, max_diff);
    const int ok = max_diff <= 1e-4 * fmax(1.0, max_delta);
    if (!ok) fprintf(stderr, "mome_lora_apply differs from the plain loop by %g\n", max_diff);

    free(x), free(u), free(out), free(queries), free(indices), free(bank_indices), free(weights), free(bank_weights);
    free(wq), free(centre), free(keys), free(a), free(b);
    mome_bank_free(bank);
    mome_model_free(model);
    return ok ? 0 : 1;
}
