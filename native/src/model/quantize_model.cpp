#include "model/quantize_model.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "gguf/tensor_types.h"
#include "quant/quant.h"

namespace mome {

namespace {

// llama.cpp's file types (general.file_type) for the two files Mome writes.
constexpr uint32_t kFileTypeQ4_0 = 2;
constexpr uint32_t kFileTypeQ8_0 = 7;

void to_f32(uint32_t type, const uint8_t* src, int64_t n, float* dst) {
    if (type == MOME_TENSOR_TYPE_F32) {
        std::memcpy(dst, src, static_cast<size_t>(n) * 4);
        return;
    }
    for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = type == MOME_TENSOR_TYPE_F16 ? f16_to_float(h) : bf16_to_float(h);
    }
}

}  // namespace

void quantize_model(const std::string& src, const std::string& dst, mome_tensor_type type) {
    if (type != MOME_TENSOR_TYPE_Q8_0 && type != MOME_TENSOR_TYPE_Q4_0)
        fail(MOME_STATUS_UNSUPPORTED, format("Mome quantizes models to Q8_0 or Q4_0, not %s", tensor_type_name(type).c_str()));
    const auto file = GgufFile::open(src);
    GgufWriter out;
    for (size_t i = 0; i < file->meta_count(); ++i) {
        const std::string& key = file->meta_key(i);
        // The writer aligns to GGUF's default; the file type is set below.
        if (key == "general.alignment" || key == "general.file_type" || key == "general.quantization_version") continue;
        out.set_value(key, file->meta_value(i));
    }
    out.set_u32("general.quantization_version", 2);
    out.set_u32("general.file_type", type == MOME_TENSOR_TYPE_Q8_0 ? kFileTypeQ8_0 : kFileTypeQ4_0);

    for (const GgufTensor& t : file->tensors()) {
        const std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        const uint8_t* data = file->tensor_data(t);
        // Matrices of a float type whose rows fill whole blocks are quantized; vectors (norms,
        // rope factors) and everything else are copied.
        const bool quantize = t.n_dims == 2 && is_compute_type(t.type) && t.ne[0] % 32 == 0;
        if (!quantize) {
            out.add_tensor(t.name, static_cast<mome_tensor_type>(t.type), ne,
                           [data, &t](uint8_t* d) { std::memcpy(d, data, t.size_bytes); });
            continue;
        }
        out.add_tensor(t.name, type, ne, [data, &t, type](uint8_t* d) {
            const int64_t cols = t.ne[0], row_bytes = quant_row_bytes(type, cols);
            const int64_t src_row = cols * static_cast<int64_t>(tensor_type_traits(t.type)->type_size);
            std::vector<float> row(static_cast<size_t>(cols));
            for (int64_t r = 0; r < t.ne[1]; ++r) {
                to_f32(t.type, data + r * src_row, cols, row.data());
                for (int64_t c = 0; c < cols; ++c)
                    if (!std::isfinite(row[static_cast<size_t>(c)]))
                        fail(MOME_STATUS_FORMAT_ERROR, format("tensor '%s' has a non-finite weight (%g) at row %lld, column %lld; Mome does not quantize it",
                                                              t.name.c_str(), static_cast<double>(row[static_cast<size_t>(c)]), static_cast<long long>(r),
                                                              static_cast<long long>(c)));
                quantize_weight_row(type, row.data(), cols, d + r * row_bytes);
            }
        });
    }
    out.write(dst);
}

}  // namespace mome
