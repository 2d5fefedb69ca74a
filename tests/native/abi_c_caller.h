/* C helpers of abi_enum_test.cpp: ABI calls and struct fields with enum values a C caller
 * may store but C++ may not load (see abi_c_caller.c). */
#ifndef MOME_TESTS_ABI_C_CALLER_H
#define MOME_TESTS_ABI_C_CALLER_H

#include "mome.h"

#ifdef __cplusplus
extern "C" {
#endif

const char* c_status_to_string(int status);
const char* c_tensor_type_name(int type);
/* A 1 x 1 matmul with the given weight type. */
mome_status c_matmul(const float* weight, int weight_type, const float* x, float* y);
void c_set_session_backend(mome_session_params* p, int backend);
void c_set_bank_enums(mome_bank_params* p, int routing, int router, int weight_type);
void c_set_router_enums(mome_router_desc* r, int kind, int key_type);
void c_set_lora_type(mome_lora_desc* d, int weight_type);
void c_set_synthetic_enums(mome_synthetic_params* p, int rope_scaling, int weight_type);

#ifdef __cplusplus
}
#endif

#endif
