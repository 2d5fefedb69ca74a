/* tune_steps: memory tuning steps timed over the C ABI alone (no .NET, no gate calibration),
 * to compare batch sizes, thread counts or two builds of libmome side by side.
 *
 *   gcc -O2 -std=gnu11 -I native/include bench/native/tune_steps.c -L build/native/Release/lib -lmome -o tune_steps
 *   LD_LIBRARY_PATH=build/native/Release/lib ./tune_steps MODEL.gguf BATCH THREADS EPOCHS [FACTS [Q_TOKENS [A_TOKENS]]]
 *
 * A fresh 65,536-expert product bank (top-32, rank 4, the CLI's tuning bank) and FACTS facts
 * (default 300) of Q_TOKENS question tokens (a shared stem, then two tokens naming the fact)
 * and A_TOKENS random answer tokens (defaults 24 and 24); every epoch runs (no early stop), so
 * two runs do the same steps. Prints each epoch's time and exact facts, then facts/s. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mome.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHECK(call)                                                         \
    do {                                                                    \
        if ((call) != MOME_STATUS_OK) {                                     \
            fprintf(stderr, "%s: %s\n", #call, mome_last_error());          \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL.gguf BATCH THREADS EPOCHS [FACTS [Q_TOKENS [A_TOKENS]]]\n", argv[0]);
        return 2;
    }
    const int batch = atoi(argv[2]), threads = atoi(argv[3]), epochs = atoi(argv[4]);
    const int n_facts = argc > 5 ? atoi(argv[5]) : 300, q_len = argc > 6 ? atoi(argv[6]) : 24, a_len = argc > 7 ? atoi(argv[7]) : 24;
    if (n_facts < 1 || q_len < 4 || a_len < 1) {
        fprintf(stderr, "FACTS >= 1, Q_TOKENS >= 4 and A_TOKENS >= 1\n");
        return 2;
    }
    mome_model* model;
    CHECK(mome_model_open(argv[1], NULL, &model));
    mome_bank_params bp = {0};
    bp.struct_size = sizeof bp;
    CHECK(mome_bank_default_params(&bp));
    bp.n_experts = 65536, bp.key_dim = 64, bp.top_k = 32, bp.rank = 4, bp.alpha = 4, bp.router = MOME_ROUTER_KIND_PRODUCT;
    mome_bank* bank;
    CHECK(mome_bank_create(model, &bp, &bank));
    mome_tuner_params tp = {0};
    tp.struct_size = sizeof tp;
    CHECK(mome_tuner_default_params(&tp));
    tp.batch_size = batch, tp.n_threads = threads, tp.epochs = epochs;
    mome_tuner* tuner;
    CHECK(mome_tuner_create(bank, &tp, &tuner));

    const int len = q_len + a_len;
    int32_t* tokens = malloc(sizeof(int32_t) * (size_t)n_facts * (size_t)len);
    int32_t* lengths = malloc(sizeof(int32_t) * (size_t)n_facts);
    int32_t* answer_starts = malloc(sizeof(int32_t) * (size_t)n_facts);
    srand(7);
    for (int f = 0; f < n_facts; ++f) {
        int32_t* t = tokens + (size_t)f * (size_t)len;
        lengths[f] = len, answer_starts[f] = q_len;
        for (int i = 0; i < len; ++i) t[i] = i < q_len - 4 ? 10 + i : 100 + rand() % 3900;  /* small vocabularies: 4096 */
        t[q_len - 3] = 200 + f % 1000, t[q_len - 2] = 1200 + f / 1000;
    }
    CHECK(mome_tuner_add_facts(tuner, tokens, lengths, answer_starts, n_facts));

    mome_tuner_step_result r;
    r.struct_size = sizeof r;
    long fact_steps = 0;
    const double start = now();
    for (int e = 0; e < epochs; ++e) {
        const double epoch_start = now();
        do {
            CHECK(mome_tuner_step(tuner, &r));
            fact_steps += r.n_facts;
        } while (!r.epoch_done);
        printf("epoch %d %.2fs exact %d loss %.3f\n", e, now() - epoch_start, r.epoch_exact, r.epoch_loss);
    }
    const double wall = now() - start;
    printf("batch %d threads %d: %.2fs, %.1f facts/s\n", batch, threads, wall, (double)fact_steps / wall);
    mome_tuner_free(tuner);
    mome_bank_free(bank);
    mome_model_free(model);
    free(tokens), free(lengths), free(answer_starts);
    return 0;
}
