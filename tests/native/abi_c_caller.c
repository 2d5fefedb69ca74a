/* What a C caller may do and C++ code may not: store any int in an ABI enum (C gives an
 * enum the range of its compatible integer type). abi_enum_test.cpp passes such values
 * through these functions, so the test itself never loads an out-of-range enum. */
#include "abi_c_caller.h"

const char* c_status_to_string(int status) { return mome_status_to_string((mome_status)status); }

const char* c_tensor_type_name(int type) { return mome_tensor_type_name((mome_tensor_type)type); }

mome_status c_matmul(const float* weight, int weight_type, const float* x, float* y) {
    return mome_matmul(weight, (mome_tensor_type)weight_type, 1, 1, x, 1, y, 1, MOME_BACKEND_CPU);
}

void c_set_session_backend(mome_session_params* p, int backend) { p->backend = (mome_backend)backend; }

void c_set_bank_enums(mome_bank_params* p, int routing, int router, int weight_type) {
    p->routing = (mome_routing_mode)routing;
    p->router = (mome_router_kind)router;
    p->weight_type = (mome_tensor_type)weight_type;
}

void c_set_router_enums(mome_router_desc* r, int kind, int key_type) {
    r->kind = (mome_router_kind)kind;
    r->key_type = (mome_tensor_type)key_type;
}

void c_set_lora_type(mome_lora_desc* d, int weight_type) { d->weight_type = (mome_tensor_type)weight_type; }

void c_set_synthetic_enums(mome_synthetic_params* p, int rope_scaling, int weight_type) {
    p->rope_scaling = (mome_rope_scaling)rope_scaling;
    p->weight_type = (mome_tensor_type)weight_type;
}
