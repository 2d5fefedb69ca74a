// ABI: sessions (the forward pass over a KV cache).
#include "core/abi_struct.h"
#include "core/error.h"
#include "core/log.h"
#include "session/session.h"

using namespace mome;

namespace {
mome_session_params default_session_params() {
    mome_session_params p = abi_struct<mome_session_params>();
    p.n_ctx = 0;
    p.n_seq_max = 1;
    p.n_threads = 0;
    p.bank = nullptr;
    p.backend = MOME_BACKEND_CPU;
    p.device = 0;
    return p;
}

mome_session_params session_params_of(const mome_session_params* params) {
    return params ? read_abi_struct(params, default_session_params(), "params is null") : default_session_params();
}

const char* backend_name(const mome_session& s) {
    if (s.backend->device() != Device::Host) return "cuda";
    return s.use_reference ? "cpu-ref" : "cpu-fast";
}

void log_session(const mome_session& s) {
    log_info(format("session: %s backend, %d sequences x %d positions, %d threads%s", backend_name(s), s.n_seq, s.n_ctx, s.n_threads,
                    s.bank ? ", with a memory bank" : ""));
}

void check_seq(const mome_session* s, int32_t seq_id) {
    if (seq_id < 0 || seq_id >= s->n_seq)
        fail(MOME_STATUS_OUT_OF_RANGE, format("sequence id %d is outside 0..%d", seq_id, s->n_seq - 1));
}
}  // namespace

extern "C" {

mome_status mome_session_default_params(mome_session_params* out) {
    return guarded([&] { write_abi_struct(out, default_session_params(), "out is null"); });
}

mome_status mome_session_create(const mome_model* model, const mome_session_params* params, mome_session** out) {
    return guarded([&] {
        require_arg(model != nullptr && out != nullptr, "model or out is null");
        std::unique_ptr<mome_session> s = create_session(*model, session_params_of(params));
        log_session(*s);
        *out = s.release();
    });
}

mome_status mome_session_create_synthetic(const mome_synthetic_params* model, const mome_session_params* params, mome_session** out) {
    return guarded([&] {
        require_arg(out != nullptr, "out is null");
        const mome_synthetic_params m = read_abi_struct(model, mome_synthetic_params{}, "model is null");
        std::unique_ptr<mome_session> s = create_synthetic_session(m, session_params_of(params));
        log_session(*s);
        *out = s.release();
    });
}

void mome_session_free(mome_session* session) { delete session; }

mome_status mome_session_decode(mome_session* session, const mome_batch* batch, float* logits, uint64_t logits_capacity) {
    return guarded([&] {
        require_arg(session != nullptr, "session is null");
        decode(*session, read_abi_struct(batch, mome_batch{}, "batch is null"), logits, logits_capacity);
    });
}

mome_status mome_session_seq_length(const mome_session* session, int32_t seq_id, int32_t* out_length) {
    return guarded([&] {
        require_arg(session != nullptr && out_length != nullptr, "session or out_length is null");
        check_seq(session, seq_id);
        *out_length = session->seq_length[static_cast<size_t>(seq_id)];
    });
}

mome_status mome_session_context_length(const mome_session* session, int32_t* out_length) {
    return guarded([&] {
        require_arg(session != nullptr && out_length != nullptr, "session or out_length is null");
        *out_length = session->n_ctx;
    });
}

mome_status mome_session_seq_truncate(mome_session* session, int32_t seq_id, int32_t length) {
    return guarded([&] {
        require_arg(session != nullptr, "session is null");
        check_seq(session, seq_id);
        const int32_t have = session->seq_length[static_cast<size_t>(seq_id)];
        if (length < 0 || length > have)
            fail(MOME_STATUS_OUT_OF_RANGE, format("cannot truncate sequence %d of length %d to %d", seq_id, have, length));
        session->seq_length[static_cast<size_t>(seq_id)] = length;
        // An emptied sequence starts a new question: it will be routed again.
        if (length == 0 && session->bank)
            for (auto& route : session->routes[static_cast<size_t>(seq_id)]) route.valid = false;
    });
}

mome_status mome_session_clear(mome_session* session) {
    return guarded([&] {
        require_arg(session != nullptr, "session is null");
        std::fill(session->seq_length.begin(), session->seq_length.end(), 0);
        for (auto& per_seq : session->routes)
            for (auto& route : per_seq) route.valid = false;
    });
}

}  // extern "C"
