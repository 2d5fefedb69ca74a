/*
 * mome.h - the C ABI of the Mome engine (Mixture of Memory Experts).
 *
 * This is the only public header. Rules (see shared DESIGN.md):
 *  - Opaque handles, functions named mome_<object>_<verb>, paired _create/_open and _free.
 *  - Options and descriptions are structs passed by pointer (see "Versioned structs").
 *  - Every fallible call returns mome_status (0 ok, < 0 error). On error,
 *    mome_last_error() returns a message for the calling thread that names the problem
 *    (and the file, for file errors). Output parameters are left untouched on error.
 *  - Nothing is thrown, aborted or exited across this boundary.
 *  - Pointers returned by the engine (strings, metadata values) are owned by the object
 *    they came from and stay valid until that object is freed.
 *
 * Threads: a model, once open, is read-only, and any number of threads may use it at once
 * (sessions over it, metadata, tensor reads). A bank may likewise be shared by many
 * sessions and threads for everything that reads it (decoding, mome_bank_route,
 * mome_bank_get_*, mome_bank_gate_evidence, mome_bank_fact_backward, mome_bank_save); a
 * call that changes it (mome_bank_set_*, mome_bank_gate_add_fact) must not overlap any other
 * use of that bank. A session is used by one
 * thread at a time. The standalone operators (mome_matmul, mome_route, mome_lora_apply)
 * may be called from any number of threads on caller buffers that do not overlap their
 * outputs. Errors are per thread: mome_last_error() reports the calling thread's last
 * failure, whatever other threads do. Freeing an object while another thread uses it, or
 * before the objects that borrow it (a model before its sessions and banks), is undefined.
 * tests/native/concurrency_test.cpp checks this under -DMOME_SANITIZE=thread.
 *
 * Versioned structs. Every struct a caller fills in and hands to the library (the *_params
 * structs, mome_batch, mome_router_desc, mome_lora_desc, mome_fact_desc, mome_fact_grads,
 * mome_tuner_step_result)
 * starts with `uint32_t struct_size`, which the caller sets to sizeof the struct as its copy
 * of this header declares it, whether the library is to read the struct or to fill it
 * (mome_*_default_params, mome_synthetic_preset, mome_bank_get_params fill only the fields
 * that fit in struct_size). Such structs only ever grow at the end, so a library accepts
 * every size from the oldest layout it knows up to its own: fields a smaller (older) struct
 * lacks take their defaults. A size below the oldest layout or above this library's is
 * refused with MOME_STATUS_INVALID_ARGUMENT and a message naming the struct and both sizes
 * (a caller built against a newer header than the library). The usual C idiom:
 *     mome_session_params p = {sizeof p};
 *     mome_session_default_params(&p);
 * Structs the library only writes (mome_*_info, mome_llama_config) carry no size: changing
 * one of them, like any other change of a signature or a layout, bumps MOME_ABI_VERSION,
 * which callers check once at load (mome_abi_version).
 *
 * Backends and devices are chosen one way: a `backend` (mome_backend) and a `device` (index
 * among that backend's devices) in the params or desc of the call, never a function per
 * backend. Device memory for the standalone operators comes from mome_device_alloc.
 *
 * Logging and cancellation: mome_set_log_callback receives the engine's messages (default:
 * warnings and errors to stderr); mome_set_abort_callback lets a thread stop its own long
 * calls, which then fail with MOME_STATUS_CANCELLED and leave every object as it was.
 */
#ifndef MOME_H
#define MOME_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(MOME_BUILD)
#    define MOME_API __declspec(dllexport)
#  else
#    define MOME_API __declspec(dllimport)
#  endif
#else
#  define MOME_API __attribute__((visibility("default")))
#endif

/* Bumped whenever a signature or struct layout changes in a way old callers cannot use. */
#define MOME_ABI_VERSION 4

/* Longest name a device reports, including the terminating NUL. */
#define MOME_DEVICE_NAME_SIZE 256

/* Most dimensions a tensor may have (as in GGUF/ggml). */
#define MOME_MAX_DIMS 4

/* Most memory layers one bank attaches to a model. */
#define MOME_MAX_MEMORY_LAYERS 8

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Status, errors, version
 * ------------------------------------------------------------------------------------- */

typedef enum mome_status {
    MOME_STATUS_OK = 0,
    /* A caller argument is invalid (null pointer, zero size, value out of its domain). */
    MOME_STATUS_INVALID_ARGUMENT = -1,
    /* The operating system refused an operation (open, read, write, rename, mmap). */
    MOME_STATUS_IO_ERROR = -2,
    /* A file is malformed: truncated, wrong magic, counts past its end, bad offsets. */
    MOME_STATUS_FORMAT_ERROR = -3,
    /* Well-formed input that this build cannot handle (GGUF version, tensor type, arch). */
    MOME_STATUS_UNSUPPORTED = -4,
    /* A named key, tensor or device does not exist. */
    MOME_STATUS_NOT_FOUND = -5,
    /* A value exists but has another type than the one asked for. */
    MOME_STATUS_TYPE_MISMATCH = -6,
    /* An index or size is past the end of what it indexes. */
    MOME_STATUS_OUT_OF_RANGE = -7,
    /* An allocation failed. */
    MOME_STATUS_OUT_OF_MEMORY = -8,
    /* A compute backend (CUDA) reported an error. */
    MOME_STATUS_BACKEND_ERROR = -9,
    /* A bug in Mome: please report the message. */
    MOME_STATUS_INTERNAL_ERROR = -10,
    /* The calling thread's abort callback asked to stop; nothing was changed. */
    MOME_STATUS_CANCELLED = -11
} mome_status;

/* MOME_ABI_VERSION of the loaded library; callers check it once at load. */
MOME_API uint32_t mome_abi_version(void);

/* Release version of the library, e.g. "0.1.0". Static string. */
MOME_API const char* mome_version(void);

/* Message of the last failed call on this thread ("" if none). Valid until the next
 * fallible call on the same thread. */
MOME_API const char* mome_last_error(void);

/* Static name of a status code, e.g. "format error". */
MOME_API const char* mome_status_to_string(mome_status status);

/* ---------------------------------------------------------------------------------------
 * Logging and cancellation
 * ------------------------------------------------------------------------------------- */

typedef enum mome_log_level {
    MOME_LOG_LEVEL_DEBUG = 0,
    MOME_LOG_LEVEL_INFO = 1,
    MOME_LOG_LEVEL_WARN = 2,
    MOME_LOG_LEVEL_ERROR = 3
} mome_log_level;

/* Receives one message (UTF-8, NUL-terminated, no trailing newline; valid during the call
 * only). It is called on whichever thread does the work, possibly several at once, so it
 * must be thread-safe; it must not call back into Mome. */
typedef void (*mome_log_callback)(mome_log_level level, const char* message, void* user_data);

/* Sets the process-wide log callback and the pointer passed to it. Null restores the
 * default: warnings and errors written to stderr, debug and info messages dropped. */
MOME_API void mome_set_log_callback(mome_log_callback callback, void* user_data);

/* Polled by long calls on the thread that set it; returning nonzero stops the call. */
typedef uint8_t (*mome_abort_callback)(void* user_data);

/* Sets the abort callback of the calling thread (null removes it); other threads are not
 * affected, and work the engine runs on its own pool threads is stopped through the call
 * that started it. Long calls poll it: mome_session_decode and mome_bank_fact_backward once
 * per layer, mome_bank_create per table it fills, mome_bank_save, mome_synthetic_write and
 * mome_model_quantize per write before the file is committed. When it returns nonzero the call fails with MOME_STATUS_CANCELLED, its outputs
 * untouched and every object (caches, routes, banks, files) as before the call. */
MOME_API void mome_set_abort_callback(mome_abort_callback callback, void* user_data);

/* ---------------------------------------------------------------------------------------
 * Build and devices
 * ------------------------------------------------------------------------------------- */

/* Where work runs. CPU is the fast CPU backend (SIMD, threads); CPU_REFERENCE runs the plain
 * reference loops on the CPU (to check the fast paths; its devices and memory are the CPU's);
 * CUDA needs a library built with CUDA (libmome_cuda) and counts CUDA devices only (device 0
 * is the first GPU). */
typedef enum mome_backend {
    MOME_BACKEND_CPU = 0,
    MOME_BACKEND_CUDA = 1,
    MOME_BACKEND_CPU_REFERENCE = 2
} mome_backend;

typedef struct mome_build_info {
    /* 1 if this library was compiled with the CUDA backend. */
    uint8_t has_cuda;
    /* 1 if the CPU this process runs on supports AVX2 / AVX-512F. */
    uint8_t cpu_avx2;
    uint8_t cpu_avx512;
    /* CUDA runtime version compiled against (e.g. 11080), 0 without CUDA. */
    int32_t cuda_runtime_version;
} mome_build_info;

MOME_API mome_status mome_get_build_info(mome_build_info* out);

typedef struct mome_device_info {
    mome_backend backend;
    /* Index among devices of the same backend. */
    int32_t index;
    char name[MOME_DEVICE_NAME_SIZE];
    /* Bytes of memory: system RAM for the CPU, device memory for a GPU. */
    uint64_t total_memory;
    /* Logical cores (CPU) or streaming multiprocessors (GPU). */
    int32_t compute_units;
    /* Compute capability (GPU only; 0 for the CPU). */
    int32_t compute_capability_major;
    int32_t compute_capability_minor;
} mome_device_info;

/* Number of devices: the CPU is always device 0; CUDA devices follow. A CUDA build on a
 * machine without a driver or GPU reports only the CPU. */
MOME_API mome_status mome_device_count(int32_t* out_count);

/* Properties of device `index` (0 <= index < mome_device_count). */
MOME_API mome_status mome_device_get_info(int32_t index, mome_device_info* out);

/* ---------------------------------------------------------------------------------------
 * GGUF values and tensor types
 * ------------------------------------------------------------------------------------- */

/* GGUF metadata value types (numbering as in the GGUF specification). */
typedef enum mome_value_type {
    MOME_VALUE_TYPE_UINT8 = 0,
    MOME_VALUE_TYPE_INT8 = 1,
    MOME_VALUE_TYPE_UINT16 = 2,
    MOME_VALUE_TYPE_INT16 = 3,
    MOME_VALUE_TYPE_UINT32 = 4,
    MOME_VALUE_TYPE_INT32 = 5,
    MOME_VALUE_TYPE_FLOAT32 = 6,
    MOME_VALUE_TYPE_BOOL = 7,
    MOME_VALUE_TYPE_STRING = 8,
    MOME_VALUE_TYPE_ARRAY = 9,
    MOME_VALUE_TYPE_UINT64 = 10,
    MOME_VALUE_TYPE_INT64 = 11,
    MOME_VALUE_TYPE_FLOAT64 = 12
} mome_value_type;

/* Tensor element types (numbering as in ggml). Mome computes with F32, F16 and BF16, and
 * on the CPU with the block-quantized Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K
 * weights; the other ggml types are recognised, sized and listed, and reading them reports
 * MOME_STATUS_UNSUPPORTED. */
typedef enum mome_tensor_type {
    MOME_TENSOR_TYPE_F32 = 0,
    MOME_TENSOR_TYPE_F16 = 1,
    MOME_TENSOR_TYPE_Q4_0 = 2,
    MOME_TENSOR_TYPE_Q4_1 = 3,
    MOME_TENSOR_TYPE_Q5_0 = 6,
    MOME_TENSOR_TYPE_Q5_1 = 7,
    MOME_TENSOR_TYPE_Q8_0 = 8,
    MOME_TENSOR_TYPE_Q8_1 = 9,
    MOME_TENSOR_TYPE_Q2_K = 10,
    MOME_TENSOR_TYPE_Q3_K = 11,
    MOME_TENSOR_TYPE_Q4_K = 12,
    MOME_TENSOR_TYPE_Q5_K = 13,
    MOME_TENSOR_TYPE_Q6_K = 14,
    MOME_TENSOR_TYPE_Q8_K = 15,
    MOME_TENSOR_TYPE_I8 = 24,
    MOME_TENSOR_TYPE_I16 = 25,
    MOME_TENSOR_TYPE_I32 = 26,
    MOME_TENSOR_TYPE_I64 = 27,
    MOME_TENSOR_TYPE_F64 = 28,
    MOME_TENSOR_TYPE_BF16 = 30
} mome_tensor_type;

/* Static name of a tensor type ("F32", "Q4_K", ...), or "unknown". */
MOME_API const char* mome_tensor_type_name(mome_tensor_type type);

/* A metadata value borrowed from the model that owns it. */
typedef struct mome_value mome_value;

typedef struct mome_value_info {
    mome_value_type type;
    /* For arrays: the type of every element; otherwise equal to `type`. */
    mome_value_type element_type;
    /* For arrays and strings: number of elements / bytes; 1 for other scalars. */
    uint64_t count;
} mome_value_info;

MOME_API mome_status mome_value_get_info(const mome_value* value, mome_value_info* out);

/* Typed getters. For an array of scalars or strings, `index` picks the element; for a
 * scalar or a single string it must be 0. MOME_STATUS_TYPE_MISMATCH names both types when
 * the value cannot be converted. */

/* Element `index` of an array of arrays (GGUF allows nesting). */
MOME_API mome_status mome_value_get_element(const mome_value* value, uint64_t index,
                                            const mome_value** out);

/* Any integer or bool value as int64 (MOME_STATUS_OUT_OF_RANGE for a uint64 above
 * INT64_MAX). */
MOME_API mome_status mome_value_get_i64(const mome_value* value, uint64_t index, int64_t* out);

/* Any non-negative integer or bool value as uint64. */
MOME_API mome_status mome_value_get_u64(const mome_value* value, uint64_t index,
                                        uint64_t* out);

/* Any float or integer value as double. */
MOME_API mome_status mome_value_get_f64(const mome_value* value, uint64_t index, double* out);

/* A bool value as 0 or 1. */
MOME_API mome_status mome_value_get_bool(const mome_value* value, uint64_t index,
                                         uint8_t* out);

/* A string value: `*out` points to `*out_length` UTF-8 bytes followed by a NUL (the
 * string itself may contain NULs; use the length). */
MOME_API mome_status mome_value_get_string(const mome_value* value, uint64_t index,
                                           const char** out, uint64_t* out_length);

/* ---------------------------------------------------------------------------------------
 * Models (GGUF files)
 * ------------------------------------------------------------------------------------- */

typedef struct mome_model mome_model;

typedef struct mome_model_params {
    uint32_t struct_size;
    /* 1: read metadata and tensor infos of any GGUF file without requiring a Llama model
     * or supported tensor types (what `mome model info` uses). 0 (default): the file must
     * be a complete Llama model whose tensors Mome can compute with. */
    uint8_t metadata_only;
} mome_model_params;

/* Fills `*out` (out->struct_size set by the caller) with the defaults. */
MOME_API mome_status mome_model_default_params(mome_model_params* out);

/* Opens a GGUF file (memory-mapped, versions 2 and 3) and validates it: every count,
 * string, array and tensor range must lie inside the file. `params` null means the
 * defaults. On failure `*out` is untouched and the message names the file and the problem. */
MOME_API mome_status mome_model_open(const char* path, const mome_model_params* params,
                                     mome_model** out);

/* Frees the model and every value borrowed from it. Null is ignored. */
MOME_API void mome_model_free(mome_model* model);

typedef enum mome_rope_scaling {
    MOME_ROPE_SCALING_NONE = 0,
    MOME_ROPE_SCALING_LINEAR = 1,
    MOME_ROPE_SCALING_YARN = 2,
    /* Llama 3.1 style: per-dimension frequency factors (tensor `rope_freqs.weight`). */
    MOME_ROPE_SCALING_LLAMA3 = 3
} mome_rope_scaling;

/* Llama hyper-parameters as read from the file (defaults applied as llama.cpp does). */
typedef struct mome_llama_config {
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;
    /* Per-head dimension of queries/keys (`attention.key_length`, default n_embd/n_head). */
    int64_t head_dim;
    /* Per-head dimension of values (`attention.value_length`, default head_dim). */
    int64_t head_dim_v;
    int64_t n_ff;
    /* Rotated dimensions per head (`rope.dimension_count`, default head_dim). */
    int64_t n_rot;
    float rope_freq_base;
    /* Multiplier on positions: 1 / `rope.scaling.factor` for linear scaling, else 1. */
    float rope_freq_scale;
    float rms_norm_eps;
    mome_rope_scaling rope_scaling;
    float rope_scaling_factor;
    int64_t rope_original_context;
    /* 1 when `output.weight` is absent and the output projection is the embedding. */
    uint8_t tied_output;
    /* 1 when the file holds `rope_freqs.weight` (per-dimension frequency factors). */
    uint8_t has_rope_freqs;
    /* Type of the projection weights (that of blk.0.attn_q.weight). */
    mome_tensor_type weight_type;
    /* Special tokens; -1 where the file names none. */
    int64_t bos_token_id;
    int64_t eos_token_id;
    /* Total number of weight elements in the file. */
    uint64_t n_params;
} mome_llama_config;

/* Hyper-parameters of a Llama model (MOME_STATUS_UNSUPPORTED for a metadata-only open of
 * a file that is not a Llama model). */
MOME_API mome_status mome_model_get_config(const mome_model* model, mome_llama_config* out);

typedef struct mome_file_info {
    uint32_t gguf_version;
    uint32_t alignment;
    uint64_t file_size;
    /* Offset of the tensor data section. */
    uint64_t data_offset;
} mome_file_info;

MOME_API mome_status mome_model_get_file_info(const mome_model* model, mome_file_info* out);

/* Metadata: key/value pairs in file order. */
MOME_API mome_status mome_model_meta_count(const mome_model* model, uint64_t* out_count);

MOME_API mome_status mome_model_meta_at(const mome_model* model, uint64_t index,
                                        const char** out_key, const mome_value** out_value);

/* MOME_STATUS_NOT_FOUND when the key is absent. */
MOME_API mome_status mome_model_meta_find(const mome_model* model, const char* key,
                                          const mome_value** out_value);

typedef struct mome_tensor_info {
    /* NUL-terminated, owned by the model. */
    const char* name;
    mome_tensor_type type;
    uint32_t n_dims;
    /* ggml order: ne[0] is the innermost (input) dimension; unused dims are 1. */
    int64_t ne[MOME_MAX_DIMS];
    /* Offset from the start of the file, and size, of the tensor's bytes. */
    uint64_t file_offset;
    uint64_t size_bytes;
} mome_tensor_info;

MOME_API mome_status mome_model_tensor_count(const mome_model* model, uint64_t* out_count);

MOME_API mome_status mome_model_tensor_at(const mome_model* model, uint64_t index,
                                          mome_tensor_info* out);

/* MOME_STATUS_NOT_FOUND when no tensor has that name. */
MOME_API mome_status mome_model_tensor_find(const mome_model* model, const char* name,
                                            uint64_t* out_index);

/* Converts tensor `index` (F32, F16, BF16 or a quantized type Mome computes with,
 * dequantized) to F32 into `dst`, which holds `count`
 * floats; `count` must equal the tensor's element count. */
MOME_API mome_status mome_model_tensor_read_f32(const mome_model* model, uint64_t index,
                                                float* dst, uint64_t count);

/* ---------------------------------------------------------------------------------------
 * Synthetic Llama models (seeded random weights, a generated SentencePiece-style
 * vocabulary with byte fallback), written as GGUF v3 files that llama.cpp loads.
 * ------------------------------------------------------------------------------------- */

typedef struct mome_synthetic_params {
    uint32_t struct_size;
    /* Vocabulary size: at least 3 control tokens + 256 byte tokens + 32. */
    int64_t n_vocab;
    int64_t n_ctx_train;
    int64_t n_embd;
    int64_t n_layer;
    int64_t n_head;
    int64_t n_head_kv;
    /* Written as `attention.key_length`/`value_length` when n_head*head_dim != n_embd. */
    int64_t head_dim;
    int64_t n_ff;
    float rope_freq_base;
    float rms_norm_eps;
    /* NONE, LINEAR (writes rope.scaling.*) or LLAMA3 (writes rope_freqs.weight). */
    mome_rope_scaling rope_scaling;
    float rope_scaling_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int64_t rope_original_context;
    /* F32, F16 or BF16 for the projections and embeddings; norms are always F32. */
    mome_tensor_type weight_type;
    /* 1: no `output.weight`; the output projection is the token embedding. */
    uint8_t tied_output;
    /* Standard deviation of the normal distribution weights are drawn from. */
    float init_std;
    uint64_t seed;
} mome_synthetic_params;

/* Parameters of a named preset: "tiny" (~0.2M parameters), "mini" (~10M) or "small"
 * (~100M). MOME_STATUS_NOT_FOUND names the presets that exist. out->struct_size is set by the
 * caller. */
MOME_API mome_status mome_synthetic_preset(const char* name, mome_synthetic_params* out);

/* Writes a synthetic Llama model to `path` atomically (a temporary file in the same folder,
 * renamed over `path` when complete): on failure no file at `path` is changed. */
MOME_API mome_status mome_synthetic_write(const mome_synthetic_params* params,
                                          const char* path);

/* Writes the GGUF model at `src_path` to `dst_path` with every F32/F16/BF16 matrix whose
 * rows are a multiple of 32 quantized to `type` (MOME_TENSOR_TYPE_Q8_0 or _Q4_0), rounded as
 * llama.cpp's quantizer rounds without an importance matrix (the same tensor bytes); vectors
 * and metadata are copied, general.file_type is set. Written atomically: on failure no file
 * at `dst_path` is changed. MOME_STATUS_UNSUPPORTED for other types. */
MOME_API mome_status mome_model_quantize(const char* src_path, const char* dst_path,
                                         mome_tensor_type type);

/* ---------------------------------------------------------------------------------------
 * Sessions: the frozen Llama forward pass over a KV cache, on the backend its params name.
 * ------------------------------------------------------------------------------------- */

typedef struct mome_session mome_session;

/* A memory bank (see "Memory banks" below). */
typedef struct mome_bank mome_bank;

typedef struct mome_session_params {
    uint32_t struct_size;
    /* Positions each sequence's cache holds, 1 .. 2^24; 0 (the default) means the model's
     * training context capped at 4096 positions, so that a file's context_length never sizes a
     * huge cache by itself (mome_session_context_length says what a session got). */
    int32_t n_ctx;
    /* Sequences held at once; their ids are 0 .. n_seq_max-1. */
    int32_t n_seq_max;
    /* CPU threads; 0 means one per core. */
    int32_t n_threads;
    /* A memory bank to run inside the model (null: the base model alone). The bank must
     * belong to the session's model and stay alive until the session is freed. */
    const mome_bank* bank;
    /* Where the forward pass runs: MOME_BACKEND_CPU (the default), MOME_BACKEND_CPU_REFERENCE
     * (the plain reference kernels, to check the fast paths; routing math too), or
     * MOME_BACKEND_CUDA on CUDA device `device` (weights and KV cache on the device; cuBLAS
     * projections). A bank's expert tables are copied to the device when the session is made:
     * changes to the bank after that are not seen by a CUDA session. */
    mome_backend backend;
    int32_t device;
} mome_session_params;

/* Fills `*out` (out->struct_size set by the caller) with the defaults. */
MOME_API mome_status mome_session_default_params(mome_session_params* out);

/* Creates a session over `model`, which must stay open until the session is freed. `params`
 * null means the defaults. */
MOME_API mome_status mome_session_create(const mome_model* model, const mome_session_params* params,
                                         mome_session** out);

/* A CUDA session (params.backend must be MOME_BACKEND_CUDA) over a synthetic model whose
 * weights are generated directly on the device from `model->seed` (uniform with standard
 * deviation init_std; norms 1), without any file: for benchmarks at shapes whose files would
 * be large, such as Llama-3-8B. The values differ from mome_synthetic_write's; there is no
 * tokenizer and no bank. */
MOME_API mome_status mome_session_create_synthetic(const mome_synthetic_params* model,
                                                   const mome_session_params* params,
                                                   mome_session** out);

/* Frees the session and its caches. Null is ignored. */
MOME_API void mome_session_free(mome_session* session);

/* Tokens to evaluate together. Token i belongs to sequence seq_ids[i] at position
 * positions[i]; the tokens of one sequence must continue exactly where its cache ends
 * (positions length, length+1, ...), in batch order. Sequences may differ in length. */
typedef struct mome_batch {
    uint32_t struct_size;
    int32_t n_tokens;
    const int32_t* tokens;
    const int32_t* positions;
    const int32_t* seq_ids;
    /* 1 where the token's logits are wanted; null means only the batch's last token. */
    const uint8_t* want_logits;
} mome_batch;

/* Evaluates a batch: appends every token's keys and values to its sequence's cache and
 * writes n_vocab logits for each token that wants them, in batch order, into `logits`
 * (room for `logits_capacity` floats). The whole batch is validated first: on any error
 * the caches and `logits` are unchanged. */
MOME_API mome_status mome_session_decode(mome_session* session, const mome_batch* batch,
                                         float* logits, uint64_t logits_capacity);

/* Number of positions sequence `seq_id` holds. */
MOME_API mome_status mome_session_seq_length(const mome_session* session, int32_t seq_id,
                                             int32_t* out_length);

/* The positions each sequence's cache holds (the n_ctx the session was made with). */
MOME_API mome_status mome_session_context_length(const mome_session* session, int32_t* out_length);

/* Keeps the first `length` positions of a sequence (0 clears it). */
MOME_API mome_status mome_session_seq_truncate(mome_session* session, int32_t seq_id,
                                               int32_t length);

/* Clears every sequence. */
MOME_API mome_status mome_session_clear(mome_session* session);

/* ---------------------------------------------------------------------------------------
 * Standalone operators (host buffers), for embedding in other engines and for benchmarks.
 * ------------------------------------------------------------------------------------- */

/* y[n_tokens x rows] = x[n_tokens x cols] * W^T for a row-major weight W [rows x cols]
 * (GGUF's layout: ne[0] = cols) in F32, F16 or BF16, over host buffers. Activations are
 * rounded to the weight's type first, as llama.cpp does. `backend` is MOME_BACKEND_CPU or
 * MOME_BACKEND_CPU_REFERENCE (the plain reference loop); n_threads 0 means one per core.
 * `y` is untouched on error. */
MOME_API mome_status mome_matmul(const void* weight, mome_tensor_type weight_type, int64_t rows,
                                 int64_t cols, const float* x, int64_t n_tokens, float* y,
                                 int32_t n_threads, mome_backend backend);

/* ---------------------------------------------------------------------------------------
 * The memory router as a standalone operator: top-k experts per query by cross-attention
 * (scaled dot product) between queries and expert keys, over caller buffers.
 * ------------------------------------------------------------------------------------- */

typedef enum mome_router_kind {
    /* Exact scores against every one of n_experts keys. */
    MOME_ROUTER_KIND_FLAT = 0,
    /* Product keys (PKM/PEER): two sub-key tables of n_sub = sqrt(n_experts) keys of
     * key_dim/2 each; expert i*n_sub + j scores q1.K1[i] + q2.K2[j]. */
    MOME_ROUTER_KIND_PRODUCT = 1
} mome_router_kind;

typedef struct mome_router_desc {
    uint32_t struct_size;
    mome_router_kind kind;
    /* F32, F16 or BF16. */
    mome_tensor_type key_type;
    /* Flat: number of keys. Product: n_sub * n_sub (a perfect square). */
    int64_t n_experts;
    /* d_k: the query length. Product keys: even; each sub-key has key_dim / 2. */
    int64_t key_dim;
    /* Flat: [n_experts x key_dim] row-major. Product: the first table [n_sub x key_dim/2]
     * followed by the second [n_sub x key_dim/2]. */
    const void* keys;
    /* Experts picked per query (1 <= top_k <= n_experts). */
    int32_t top_k;
    /* Softmax temperature of the weights (> 0). */
    float temperature;
    /* Where the keys, queries and outputs live and the routing runs (see mome_device_alloc):
     * MOME_BACKEND_CPU (host buffers, the default 0), MOME_BACKEND_CPU_REFERENCE (host
     * buffers, the plain reference loop) or MOME_BACKEND_CUDA on CUDA device `device`. */
    mome_backend backend;
    int32_t device;
    /* CUDA only: a cudaStream_t, or null for the device's default stream. */
    void* stream;
} mome_router_desc;

/* Routes `n_queries` F32 queries ([n_queries x key_dim]): for each, the top_k experts by
 * score s = q.k / sqrt(key_dim), best first (equal scores: lower index first), their
 * weights softmax(s / temperature) over the top_k, and optionally the scores themselves.
 * Outputs are [n_queries x top_k]; `out_scores` may be null. The full score matrix is never
 * stored. NaN or infinite queries or scores are reported (naming the query or expert), and
 * then no output is written. n_threads (0: one per core) applies to the CPU backends.
 * On CUDA (router->backend) the scores run on tensor cores for F16/BF16 keys (queries
 * rounded to the keys' type, F32 accumulation) and on CUDA cores for F32 keys; the per-query
 * top-k is kept in registers as the key tiles stream by; top_k is at most 32 there. The call
 * waits for the stream and then reports a non-finite query or score (the outputs are then
 * unspecified). */
MOME_API mome_status mome_route(const mome_router_desc* router, const float* queries,
                                int64_t n_queries, int32_t* out_indices, float* out_weights,
                                float* out_scores, int32_t n_threads);

/* ---------------------------------------------------------------------------------------
 * Grouped LoRA as a standalone operator: every token adds its routed experts' low-rank
 * updates, over caller buffers.
 * ------------------------------------------------------------------------------------- */

typedef struct mome_lora_desc {
    uint32_t struct_size;
    /* F32, F16 or BF16 for both tables. */
    mome_tensor_type weight_type;
    int64_t n_experts;
    /* d: the hidden size (input and output of every expert). */
    int64_t dim;
    /* r: the rank of every expert. */
    int32_t rank;
    /* A: [n_experts x rank x dim]: expert e's A_e (r x d), row-major. */
    const void* a;
    /* B: [n_experts x rank x dim]: expert e's B_e (d x r) stored transposed (r rows of d). */
    const void* b;
    /* Where the tables and every buffer of the call live, as in mome_router_desc: CPU (the
     * default 0; CPU_REFERENCE runs the same loop) or CUDA on CUDA device `device`. */
    mome_backend backend;
    int32_t device;
    /* CUDA only: a cudaStream_t, or null for the device's default stream. */
    void* stream;
} mome_lora_desc;

/* out[t] += scale * sum_j weights[s][j] * B_e (A_e u[t]) with e = indices[s][j], for every
 * token t of segment s (tokens segment_offsets[s] .. segment_offsets[s+1]-1).
 * Segmented form (per sequence, as Punica's SGMV): one segment per sequence, whose tokens
 * share its top_k experts. Per-token form (as BGMV): n_segments = n_tokens, offsets 0..n.
 * u and out are [n_tokens x dim]; indices and weights are [n_segments x top_k]. An index
 * outside 0..n_experts-1 or a non-finite weight is reported and `out` is left untouched
 * (on CUDA they are checked on the device first, and the call waits for that check).
 * n_threads (0: one per core) applies to the CPU backends. */
MOME_API mome_status mome_lora_apply(const mome_lora_desc* experts, const float* u,
                                     int64_t n_tokens, const int64_t* segment_offsets,
                                     int64_t n_segments, const int32_t* indices,
                                     const float* weights, int32_t top_k, float scale,
                                     float* out, int32_t n_threads);

/* ---------------------------------------------------------------------------------------
 * Device memory owned by the native core, so a host (or another inference server) needs no
 * CUDA binding of its own to give the operators above device buffers. On the CPU backends
 * it is host memory (64-byte aligned; device must be 0). On CUDA a library built without it
 * (libmome.so) answers MOME_STATUS_UNSUPPORTED, and a CUDA error becomes
 * MOME_STATUS_BACKEND_ERROR with CUDA's message.
 * ------------------------------------------------------------------------------------- */

typedef enum mome_copy_kind {
    MOME_COPY_KIND_HOST_TO_DEVICE = 0,
    MOME_COPY_KIND_DEVICE_TO_HOST = 1,
    MOME_COPY_KIND_DEVICE_TO_DEVICE = 2
} mome_copy_kind;

MOME_API mome_status mome_device_alloc(mome_backend backend, int32_t device, uint64_t bytes,
                                       void** out);
/* Frees memory from mome_device_alloc of the same backend; null is ignored. */
MOME_API mome_status mome_device_free(mome_backend backend, void* ptr);
/* A synchronous copy of `bytes` between host memory and the backend's device memory. */
MOME_API mome_status mome_device_copy(mome_backend backend, void* dst, const void* src,
                                      uint64_t bytes, mome_copy_kind kind);
/* Waits for everything queued on the device; reports any asynchronous error. */
MOME_API mome_status mome_device_synchronize(mome_backend backend, int32_t device);

/* ---------------------------------------------------------------------------------------
 * Memory banks: the expert tables of one or more memory layers attached to a model.
 * ------------------------------------------------------------------------------------- */

typedef enum mome_routing_mode {
    /* One route per sequence from the mean of the memory layer's normalised input over its
     * question (its first batch); decode steps reuse it. */
    MOME_ROUTING_MODE_SEQUENCE = 0,
    /* One route per token (PEER style). */
    MOME_ROUTING_MODE_TOKEN = 1
} mome_routing_mode;

typedef struct mome_bank_params {
    uint32_t struct_size;
    /* Memory layers: n_layers indices into the model's blocks. n_layers 0 means one layer
     * at about 3/4 depth. */
    int32_t n_layers;
    int32_t layers[MOME_MAX_MEMORY_LAYERS];
    /* Experts per memory layer (product router: a perfect square). */
    int64_t n_experts;
    /* d_k: length of router queries and keys (product router: even). */
    int64_t key_dim;
    /* r: rank of every expert. */
    int32_t rank;
    /* k: experts picked per query. */
    int32_t top_k;
    /* Softmax temperature of the routing weights. */
    float temperature;
    /* The delta is scaled by alpha / rank. */
    float alpha;
    mome_routing_mode routing;
    mome_router_kind router;
    /* Storage type of keys, A and B: F32, F16 or BF16 (W_q is always F32). */
    mome_tensor_type weight_type;
    /* Seed of the random initialisation (keys, W_q, A; B starts at zero). */
    uint64_t seed;
} mome_bank_params;

/* Fills `*out` (out->struct_size set by the caller) with the defaults. */
MOME_API mome_status mome_bank_default_params(mome_bank_params* out);

/* Creates a bank for `model` (which must stay open while the bank lives) with random keys,
 * router and A, and B = 0, so that a fresh bank leaves the model's logits unchanged.
 * `params` null means the defaults. */
MOME_API mome_status mome_bank_create(const mome_model* model, const mome_bank_params* params,
                                      mome_bank** out);

/* Loads a bank file (safetensors, memory-mapped) for `model`: checks every tensor's
 * checksum and that the bank was made for this very model (hyper-parameters and weight
 * checksums), failing with a message that says which. */
MOME_API mome_status mome_bank_load(const mome_model* model, const char* path,
                                    mome_bank** out);

/* Saves the bank as safetensors, crash-safe: a temporary file in the same folder, fsync,
 * rename over `path`, fsync of the folder. A failure or crash leaves any previous file at
 * `path` intact. */
MOME_API mome_status mome_bank_save(const mome_bank* bank, const char* path);

/* Frees the bank. Null is ignored. */
MOME_API void mome_bank_free(mome_bank* bank);

/* The parameters the bank was made with (layers resolved to their indices); out->struct_size
 * is set by the caller. */
MOME_API mome_status mome_bank_get_params(const mome_bank* bank, mome_bank_params* out);

/* Bytes of expert tables (keys, A, B, W_q) the bank holds. */
MOME_API mome_status mome_bank_size_bytes(const mome_bank* bank, uint64_t* out);

/* Copies expert `expert` of memory layer `layer_slot` out as F32: a = A_e [rank x dim],
 * b = B_e transposed [rank x dim]. Either pointer may be null. */
MOME_API mome_status mome_bank_get_expert(const mome_bank* bank, int32_t layer_slot,
                                          int64_t expert, float* a, float* b);

/* Overwrites expert `expert` of memory layer `layer_slot` (rounded to the bank's storage
 * type); either pointer may be null to keep that table. A bank loaded from a file is copied
 * into memory on its first write (the file is never modified). Non-finite values are
 * refused and nothing changes. */
MOME_API mome_status mome_bank_set_expert(mome_bank* bank, int32_t layer_slot, int64_t expert,
                                          const float* a, const float* b);

/* Routes queries (already projected: [n_queries x key_dim]) through memory layer
 * `layer_slot` (0 .. n_layers-1) of the bank; outputs as mome_route. */
MOME_API mome_status mome_bank_route(const mome_bank* bank, int32_t layer_slot,
                                     const float* queries, int64_t n_queries,
                                     int32_t* out_indices, float* out_weights,
                                     int32_t n_threads);

/* ---------------------------------------------------------------------------------------
 * Memory tuning: the gradient of one fact's loss with respect to its routed experts.
 * ------------------------------------------------------------------------------------- */

typedef struct mome_fact_result {
    /* Mean cross-entropy over the answer tokens. */
    float loss;
    /* Answer tokens, and how many of them the model predicts exactly (greedy argmax). */
    int32_t n_answer_tokens;
    int32_t n_correct;
} mome_fact_result;

/* One fact to backpropagate: tokens = question then answer; the answer starts at
 * `answer_start`. `route_indices` and `route_weights` (top_k each, or n_tokens x top_k for a
 * bank that routes per token; or both null) give a route cached from an earlier call, used
 * instead of routing (once the router is frozen a fact always takes the same route).
 * The frozen layers up to the memory layer's block compute the same for a fact at every
 * step: `prefix_out` (optional, [2 x n_tokens x n_embd]) receives the memory layer's input
 * over the tokens followed by the residual stream after its block, before the bank's delta;
 * giving them back as `prefix` (optional, same layout, same tokens, same model) skips those
 * layers. Results are identical either way. */
typedef struct mome_fact_desc {
    uint32_t struct_size;
    const int32_t* tokens;
    int32_t n_tokens;
    int32_t answer_start;
    const int32_t* route_indices;
    const float* route_weights;
    const float* prefix;
    float* prefix_out;
    /* Optional: a CUDA session of the bank's model (made without a bank): the step runs on
     * its device with its weights (the route is still made on the host, and the routed
     * experts are read from the bank as it is now). Router gradients are not available there. */
    mome_session* session;
} mome_fact_desc;

/* Outputs of one fact's backward. `indices`, `weights` (top_k each), `da` and `db`
 * ([top_k x rank x n_embd] each, in route order, B transposed as stored) are required.
 * `dwq` ([key_dim x n_embd]) and `dkeys` ([top_k x key_dim], route order) are optional
 * and come together: the router's gradients (through the softmax weights of the route; the
 * choice of the top k itself has none). Row j of `dkeys` is the gradient of the key that
 * scored route entry j: for a flat router the key of expert indices[j]; for a product
 * router its first half belongs to sub-key indices[j] / n_sub of the first table and its
 * second half to sub-key indices[j] % n_sub of the second (n_sub = sqrt(n_experts); entries
 * sharing a sub-key add up). Router gradients need live routing (no cached route). */
typedef struct mome_fact_grads {
    uint32_t struct_size;
    int32_t* indices;
    float* weights;
    float* da;
    float* db;
    float* dwq;
    float* dkeys;
    mome_fact_result result;
    /* Entries the arrays above hold (indices and weights: `capacity`; da and db: `capacity`
     * experts); 0 means top_k, enough for a bank that routes per sequence. A bank that routes
     * per token gives each token its own route: indices and weights receive n_tokens x top_k
     * entries (so capacity must be at least that), and da and db one row block per distinct
     * expert, listed in `experts` (optional, `capacity` entries) in that order; `n_experts`
     * says how many. Per sequence, `experts` is the route itself. */
    int32_t capacity;
    int32_t* experts;
    int32_t n_experts;
} mome_fact_grads;

/* For one fact: routes the question through the bank's memory layer exactly as a session
 * asking the question would (mean of the layer's input over tokens[0 .. answer_start-1],
 * minus the routing centre, times W_q), runs the frozen model with the bank over all
 * tokens, and backpropagates the mean cross-entropy of the answer tokens through the layers
 * above the memory layer into the routed experts (and the router, when asked). The bank
 * must have exactly one memory layer. Nothing in the bank changes. */
MOME_API mome_status mome_bank_fact_backward(const mome_bank* bank, const mome_fact_desc* fact,
                                             mome_fact_grads* out, int32_t n_threads);

/* The router's tables of memory layer `layer_slot` as F32. W_q: [key_dim x n_embd].
 * Keys are addressed by row: a flat router has n_experts rows of key_dim; a product router
 * 2 x n_sub rows of key_dim / 2 (the first table's n_sub rows, then the second's). Setters
 * round to the bank's storage type, refuse non-finite values (nothing changes), and copy a
 * file-backed bank into memory on its first write. */
MOME_API mome_status mome_bank_get_wq(const mome_bank* bank, int32_t layer_slot, float* out);
MOME_API mome_status mome_bank_set_wq(mome_bank* bank, int32_t layer_slot, const float* wq);
MOME_API mome_status mome_bank_get_key_rows(const mome_bank* bank, int32_t layer_slot,
                                            int64_t first_row, int64_t n_rows, float* out);
MOME_API mome_status mome_bank_set_key_rows(mome_bank* bank, int32_t layer_slot,
                                            int64_t first_row, int64_t n_rows,
                                            const float* rows);

/* The mean of the memory layer's input over a question's tokens (slot 0 of a one-layer
 * bank): what per-sequence routing starts from. `out` holds n_embd floats. */
MOME_API mome_status mome_bank_question_mean(const mome_bank* bank, const int32_t* tokens,
                                             int32_t n_tokens, float* out, int32_t n_threads);

/* The routing centre of a memory layer: routing queries are W_q (u - centre). A new bank's
 * centre is zero; tuning sets it to the mean question input of its facts, so that questions
 * that differ in a few words still reach different experts. `centre` holds n_embd floats. */
MOME_API mome_status mome_bank_get_centre(const mome_bank* bank, int32_t layer_slot, float* out);
MOME_API mome_status mome_bank_set_centre(mome_bank* bank, int32_t layer_slot, const float* centre);

/* ---------------------------------------------------------------------------------------
 * The tuner: memory tuning of a one-layer bank, native end to end. It holds the facts, the
 * optimiser's state for the experts (and, in router epochs, W_q and key rows) it has updated,
 * each fact's route once the router is frozen, and the frozen layers' outputs of as many
 * facts as its activation budget holds. Each step takes the next `batch_size` facts (in the
 * order they were added), runs them as one batch (one sequence per fact), and updates the
 * union of their routed experts with the sum of the gradients of the facts that greedy
 * decoding does not yet get exactly; exact facts are not updated (per-fact early stop).
 * "Exact" here and below means every answer token is the greedy argmax by a margin: its
 * probability is at least sigmoid(0.1), so its logit leads every other token's by at least
 * 0.1, and the last-bit differences of another summation order of the same model (a
 * session's decode kernels, other thread counts, another backend) do not change the answer
 * a session decodes.
 * Router epochs (the first `router_epochs`) step one fact at a time with live routes and also
 * train W_q and the route's key rows. The caller does what is not the optimiser: centring,
 * whitening, the gate, progress, and when to checkpoint. The tuner borrows the bank (which
 * must outlive it) and is its only writer while it steps; using one tuner from two threads
 * at once is undefined.
 * ------------------------------------------------------------------------------------- */

typedef struct mome_tuner mome_tuner;

typedef enum mome_optimizer {
    /* Adam with decoupled weight decay; 2 floats of state per trained value. */
    MOME_OPTIMIZER_ADAMW = 0,
    /* Adafactor-style: a factored second moment (row and column means) and no first moment;
     * rank + n_embd floats of state per expert table instead of 2 x rank x n_embd. */
    MOME_OPTIMIZER_ADAFACTOR = 1
} mome_optimizer;

typedef enum mome_lr_schedule {
    MOME_LR_SCHEDULE_CONSTANT = 0,
    /* Half a cosine from the rate down to final_lr_ratio of it over the epoch budget. */
    MOME_LR_SCHEDULE_COSINE = 1,
    /* A straight line from the rate down to final_lr_ratio of it. */
    MOME_LR_SCHEDULE_LINEAR = 2
} mome_lr_schedule;

typedef struct mome_tuner_params {
    uint32_t struct_size;
    mome_optimizer optimizer;
    float learning_rate;
    mome_lr_schedule schedule;
    /* Steps over which the rate ramps up linearly from 0 (0: none). */
    int32_t warmup_steps;
    float final_lr_ratio;
    float beta1;
    float beta2;
    float epsilon;
    float weight_decay;
    /* The epoch budget (what the schedule spans) and the router epochs within it. */
    int32_t epochs;
    int32_t router_epochs;
    float router_learning_rate;
    /* Facts per step (>= 1). */
    int32_t batch_size;
    /* Bytes kept for the facts' frozen-layer outputs (2 x n_tokens x n_embd floats a fact). */
    int64_t activation_cache_bytes;
    int32_t n_threads;
    mome_backend backend;
    int32_t device;
    /* The most bytes one step's activations may take; a batch estimated above it is refused
     * before anything runs, naming both sizes. 0: half of the machine's physical memory. */
    int64_t max_step_bytes;
} mome_tuner_params;

/* Defaults: AdamW, rate 0.3, constant, betas 0.9 / 0.999, epsilon 1e-8, no weight decay,
 * 40 epochs, no router epochs (router rate 1e-3), batch 16, 1 GiB of activations, all
 * threads, the CPU. */
MOME_API mome_status mome_tuner_default_params(mome_tuner_params* params);

/* A tuner of a bank. Every memory layer's routed experts are trained: the lowest layer routes
 * from the frozen layers' output (its routes cached once the router is frozen), the layers
 * above it route live from their own inputs, as a session does; router epochs need a bank
 * with one memory layer. Fails naming the parameter out of range. */
MOME_API mome_status mome_tuner_create(mome_bank* bank, const mome_tuner_params* params, mome_tuner** out);
MOME_API void mome_tuner_free(mome_tuner* tuner);

/* Appends facts: fact i is fact_lengths[i] tokens of `tokens` (one after the other), its
 * answer starting at answer_starts[i] (>= 1, with at least one answer token). A fact longer
 * than the model's context, an empty answer or a token outside the vocabulary is refused,
 * naming the fact, and none of the facts is added. Only before the first step. */
MOME_API mome_status mome_tuner_add_facts(mome_tuner* tuner, const int32_t* tokens, const int32_t* fact_lengths,
                                          const int32_t* answer_starts, int32_t n_facts);

typedef struct mome_tuner_step_result {
    uint32_t struct_size;
    /* The epoch (0-based) and the facts [first_fact, first_fact + n_facts) this step took. */
    int32_t epoch;
    int32_t first_fact;
    int32_t n_facts;
    /* Of those: the sum of their mean answer losses, and how many were exact (not updated). */
    double loss_sum;
    int32_t n_exact;
    /* The rate this step used, and the steps that updated something so far (all epochs). */
    double learning_rate;
    int64_t updates;
    uint8_t router_phase;
    /* 1 when this step ended its epoch; then epoch_loss (mean over the facts) and
     * epoch_exact describe the whole epoch. */
    uint8_t epoch_done;
    double epoch_loss;
    int32_t epoch_exact;
} mome_tuner_step_result;

/* One step (see above); the bank's experts change. Cancellable (mome_set_abort_callback):
 * then nothing changes. Fails when the epoch budget is spent. */
MOME_API mome_status mome_tuner_step(mome_tuner* tuner, mome_tuner_step_result* out);

typedef struct mome_tuner_info {
    int32_t n_facts;
    /* Where the next step starts. */
    int32_t epoch;
    int32_t position;
    int64_t updates;
    /* Experts with optimiser state, the state's bytes per expert and in all (experts, key
     * rows, W_q), and the bytes of the activation cache in use. */
    int64_t touched_experts;
    int64_t state_bytes_per_expert;
    int64_t state_bytes;
    int64_t activation_bytes;
} mome_tuner_info;

MOME_API mome_status mome_tuner_get_info(const mome_tuner* tuner, mome_tuner_info* out);

/* Greedy exactness of every fact as the bank is now (forward only, in batches): exact[i]
 * (optional, n_facts entries) is 1 when fact i's answer is decoded exactly, with the margin
 * above; *n_exact
 * receives the count. Nothing changes but the caches. */
MOME_API mome_status mome_tuner_evaluate(mome_tuner* tuner, uint8_t* exact, int32_t* n_exact);

/* A checkpoint at `bank_path`: the bank to "<bank_path>.next", the tuner's state to
 * "<bank_path>.state" (the one it replaces kept as "<bank_path>.state.prev"), then the bank
 * renamed to `bank_path`; every file written crash-safely (temporary file, flush, rename).
 * Killed anywhere, the bank at `bank_path` matches the state or the previous state. The state
 * names the bank by its size and CRC-32C and the facts by theirs; `elapsed_seconds` is kept
 * for the caller. */
MOME_API mome_status mome_tuner_checkpoint(mome_tuner* tuner, const char* bank_path, double elapsed_seconds);

typedef enum mome_resume_outcome {
    MOME_RESUME_OUTCOME_RESUMED = 0,
    /* No state file next to the bank: the tuner starts afresh. */
    MOME_RESUME_OUTCOME_NO_STATE = 1,
    /* The state was written for other facts (or another prompt template). */
    MOME_RESUME_OUTCOME_OTHER_FACTS = 2,
    /* Neither the state nor the previous state belongs to the bank at bank_path. */
    MOME_RESUME_OUTCOME_OTHER_BANK = 3
} mome_resume_outcome;

/* Continues from the checkpoint at `bank_path` (the tuner's bank must be the one loaded from
 * there, its facts added): restores the position, the optimiser and *elapsed_seconds. A state
 * that is not Mome's, is truncated or corrupt, or has another shape or optimiser is an error
 * (MOME_STATUS_FORMAT_ERROR naming the problem); an outcome other than MOME_RESUME_OUTCOME_RESUMED changes
 * nothing. Only before the first step. */
MOME_API mome_status mome_tuner_resume(mome_tuner* tuner, const char* bank_path, mome_resume_outcome* outcome,
                                       double* elapsed_seconds);

/* ---------------------------------------------------------------------------------------
 * The locality gate (one-layer banks, slot 0): the experts add their delta only where a
 * route carries evidence of a memorised fact, and exactly nothing elsewhere. The gate holds
 * signatures (unit routing queries of memorised facts) and a threshold; the evidence of a
 * route is its query's largest cosine with a signature, and a route below the threshold
 * gets zero weights. A new bank's gate is off (threshold -2: every route applies, as before
 * there was a gate); memory tuning adds its facts' signatures and calibrates the threshold.
 * Per sequence a fact has one signature (its question's mean input); per token, one for each
 * position whose next token is trained (the question's last token to the answer's
 * second-to-last). Sessions and mome_bank_fact_backward apply the gate the same way.
 * ------------------------------------------------------------------------------------- */

/* Adds the signatures of one fact (tokens = question then answer, the answer starting at
 * `answer_start` >= 1), as the bank routes it now (centre and W_q as they are); signatures
 * bit-identical to held ones are skipped. On failure nothing changes. */
MOME_API mome_status mome_bank_gate_add_fact(mome_bank* bank, const int32_t* tokens,
                                             int32_t n_tokens, int32_t answer_start,
                                             int32_t n_threads);

/* The evidence of a text as a session would route it: per sequence one value (the mean input
 * over all its tokens, as a question's first batch), per token one for each token. `out`
 * holds `capacity` floats; `n_out` receives how many were written. -1 means no signature at
 * all. Nothing changes. */
MOME_API mome_status mome_bank_gate_evidence(const mome_bank* bank, const int32_t* tokens,
                                             int32_t n_tokens, float* out, int32_t capacity,
                                             int32_t* n_out, int32_t n_threads);

/* The gate of memory layer `layer_slot`: its threshold and number of signatures. */
MOME_API mome_status mome_bank_get_gate(const mome_bank* bank, int32_t layer_slot,
                                        float* threshold, int64_t* n_signatures);

/* Sets the threshold of memory layer `layer_slot`'s gate: in [-1, 1] the gate is on (a route
 * applies when its evidence >= threshold); -2 turns it off. Other values are refused. */
MOME_API mome_status mome_bank_set_gate_threshold(mome_bank* bank, int32_t layer_slot,
                                                  float threshold);

/* ---------------------------------------------------------------------------------------
 * The fine-tuner: the usual alternatives to memory tuning, on the same facts and the same
 * loss (mean cross-entropy over each answer; facts greedy decoding already gets exactly, with
 * the tuner's margin, add no gradient), for side-by-side measurements. LORA trains adapters of rank `rank` beside the
 * q, k, v, o, gate, up and down projections of every block (A random, B zero, output scale
 * alpha / rank) with the model frozen; FULL trains every weight (embeddings, norms,
 * projections, output head) as a private F32 copy, so the model itself never changes. Dense
 * AdamW over every trained value (2 floats of state each). Each step takes the next
 * `batch_size` facts in order, wrapping around at the end of the facts. The fine-tuner
 * borrows the model (which must outlive it); using one from two threads at once is undefined.
 * ------------------------------------------------------------------------------------- */

typedef struct mome_finetuner mome_finetuner;

typedef enum mome_finetune_mode {
    MOME_FINETUNE_MODE_LORA = 0,
    MOME_FINETUNE_MODE_FULL = 1
} mome_finetune_mode;

typedef struct mome_finetuner_params {
    uint32_t struct_size;
    mome_finetune_mode mode;
    /* LORA: the adapters' rank (1..4096) and alpha (their output scale is alpha / rank). */
    int32_t rank;
    float alpha;
    float learning_rate;
    float beta1;
    float beta2;
    float epsilon;
    float weight_decay;
    /* Facts per step (>= 1). */
    int32_t batch_size;
    int32_t n_threads;
    mome_backend backend;
    int32_t device;
    /* Seeds the adapters' A matrices. */
    uint64_t seed;
} mome_finetuner_params;

/* Defaults: LORA, rank 8, alpha 16, rate 1e-3, betas 0.9 / 0.999, epsilon 1e-8, no weight
 * decay, batch 16, all threads, the CPU, seed 1. */
MOME_API mome_status mome_finetuner_default_params(mome_finetuner_params* params);

/* A fine-tuner of a model. Fails naming the parameter out of range (an unknown mode, a rank
 * outside 1..4096, ...). */
MOME_API mome_status mome_finetuner_create(const mome_model* model, const mome_finetuner_params* params, mome_finetuner** out);
MOME_API void mome_finetuner_free(mome_finetuner* finetuner);

/* Appends facts, laid out and checked as mome_tuner_add_facts does; none is added on failure.
 * Only before the first step. */
MOME_API mome_status mome_finetuner_add_facts(mome_finetuner* finetuner, const int32_t* tokens, const int32_t* fact_lengths,
                                              const int32_t* answer_starts, int32_t n_facts);

typedef struct mome_finetuner_step_result {
    uint32_t struct_size;
    /* The facts [first_fact, first_fact + n_facts) this step took. */
    int32_t first_fact;
    int32_t n_facts;
    /* Of those: the sum of their mean answer losses (before the update) and how many were exact. */
    double loss_sum;
    int32_t n_exact;
    /* 1 when the backward ran and the weights were updated (some fact was not exact). */
    uint8_t updated;
    /* 1 when this step took the last facts (the next one starts again at the first). */
    uint8_t epoch_done;
} mome_finetuner_step_result;

/* One step (see above). Cancellable (mome_set_abort_callback): then nothing changes. */
MOME_API mome_status mome_finetuner_step(mome_finetuner* finetuner, mome_finetuner_step_result* out);

typedef struct mome_finetuner_info {
    int32_t n_facts;
    int32_t position;
    int64_t updates;
    /* Values trained, and the optimiser's state in bytes (AdamW's moments and step counts). */
    int64_t trained_params;
    int64_t optimizer_state_bytes;
} mome_finetuner_info;

MOME_API mome_status mome_finetuner_get_info(const mome_finetuner* finetuner, mome_finetuner_info* out);

/* Greedy exactness of every fact with the trained weights, as mome_tuner_evaluate reports it. */
MOME_API mome_status mome_finetuner_evaluate(mome_finetuner* finetuner, uint8_t* exact, int32_t* n_exact);

/* The logits [n_tokens x n_vocab] of every position of one sequence (positions 0..n_tokens-1)
 * with the trained weights. Nothing changes. */
MOME_API mome_status mome_finetuner_logits(mome_finetuner* finetuner, const int32_t* tokens, int32_t n_tokens, float* logits);

#ifdef __cplusplus
}
#endif

#endif /* MOME_H */
