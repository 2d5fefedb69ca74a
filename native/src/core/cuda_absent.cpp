// Built instead of src/cuda/ when no CUDA compiler was found.
#include "core/devices.h"

namespace mome {

std::vector<mome_device_info> cuda_devices() { return {}; }
int cuda_runtime_version() { return 0; }

}  // namespace mome
