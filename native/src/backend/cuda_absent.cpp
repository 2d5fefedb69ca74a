// Built instead of src/cuda/ and backend/cuda_backend.cu when no CUDA compiler was found: no
// devices, and every CUDA call says so.
#include "backend/backend.h"
#include "core/cuda_backend.h"
#include "core/devices.h"
#include "core/error.h"
#include "model/synthetic.h"

namespace mome {

std::vector<mome_device_info> cuda_devices() { return {}; }
int cuda_runtime_version() { return 0; }

namespace {

[[noreturn]] void no_cuda() {
    fail(MOME_STATUS_UNSUPPORTED, "this library was built without CUDA (libmome); load libmome_cuda, built where nvcc is found");
}

}  // namespace

void* cuda_alloc(int, uint64_t) { no_cuda(); }
void cuda_free(void*) { no_cuda(); }
void cuda_copy(void*, const void*, uint64_t, mome_copy_kind) { no_cuda(); }
void cuda_synchronize(int) { no_cuda(); }
void cuda_route(int, const mome_router_desc&, const float*, int64_t, int32_t*, float*, float*, void*) { no_cuda(); }
void cuda_lora_apply(int, const mome_lora_desc&, const float*, int64_t, const int64_t*, int64_t, const int32_t*, const float*, int32_t,
                     float, float*, void*) {
    no_cuda();
}
std::unique_ptr<Backend> make_cuda_backend(int) { no_cuda(); }
LlamaWeights cuda_synthetic_weights(Backend&, const mome_synthetic_params&, const mome_llama_config&, const std::vector<float>&) {
    no_cuda();
}

}  // namespace mome
