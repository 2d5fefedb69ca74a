// Cancellation of long calls (mome_set_abort_callback): each thread may set a callback that
// long loops poll through check_abort(). Without one, check_abort() is one thread-local load,
// so it can sit in per-layer loops; threads of the engine's pools never have one, so only the
// thread that made the ABI call stops, and its error unwinds the call.
#pragma once

#include "mome.h"

namespace mome {

struct AbortHook {
    mome_abort_callback callback = nullptr;
    void* user_data = nullptr;
};

extern thread_local AbortHook t_abort_hook;

// Throws Error(MOME_STATUS_CANCELLED) from the calling thread's abort callback.
[[noreturn]] void fail_cancelled();

// Fails with MOME_STATUS_CANCELLED when the calling thread's abort callback returns nonzero.
// Call it where stopping leaves every object consistent (nothing half-written).
inline void check_abort() {
    const AbortHook& hook = t_abort_hook;
    if (hook.callback && hook.callback(hook.user_data)) fail_cancelled();
}

}  // namespace mome
