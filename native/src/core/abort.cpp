#include "core/abort.h"

#include "core/error.h"

namespace mome {

thread_local AbortHook t_abort_hook;

void fail_cancelled() { fail(MOME_STATUS_CANCELLED, "cancelled: the calling thread's abort callback asked to stop"); }

}  // namespace mome
