// cuBLAS for the CUDA backend: one handle per device (made on first use), checked calls.
#pragma once

#include <cublas_v2.h>

namespace mome {

// The handle of the current device.
cublasHandle_t cublas_handle();

void check_cublas(cublasStatus_t status, const char* what);

}  // namespace mome
