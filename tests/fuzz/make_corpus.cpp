// Writes the fuzz harnesses' seed corpora (tests/fuzz/corpus/<harness>/) with the project's
// own writers: tiny valid files of each kind, and truncations of them that stop inside each
// section. Usage: mome_fuzz_make_corpus <corpus folder>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../native/abi_structs.h"
#include "fuzz_support.h"
#include "gguf/gguf_writer.h"

namespace {

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const uint8_t* data, size_t size) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
        std::perror(path.c_str());
        std::exit(1);
    }
}

// The file itself, then prefixes of it cut at each of `cuts` bytes.
void seed(const std::string& dir, const std::string& name, const std::vector<uint8_t>& bytes, const std::vector<size_t>& cuts) {
    write_all(dir + "/" + name, bytes.data(), bytes.size());
    for (size_t cut : cuts)
        if (cut < bytes.size()) write_all(dir + "/" + name + ".cut" + std::to_string(cut), bytes.data(), cut);
}

void gguf_seeds(const std::string& dir, const std::string& tmp) {
    const mome_synthetic_params mp = mome_fuzz::tiny_model_params();
    mome_fuzz::check(mome_synthetic_write(&mp, tmp.c_str()), "mome_synthetic_write");
    std::vector<uint8_t> model = read_all(tmp);
    seed(dir, "tiny_llama.gguf", model, {24, 100, 2000, model.size() / 2, model.size() - 1});
    std::vector<uint8_t> v2 = model;
    v2[4] = 2;  // versions 2 and 3 share this layout
    seed(dir, "tiny_llama_v2.gguf", v2, {});

    mome::GgufWriter w;
    w.set_string("general.architecture", "other");
    w.set_u32("general.alignment", 32);
    w.set_i32("i", -3);
    w.set_u64("u", 1ull << 40);
    w.set_f32("f", 0.25f);
    w.set_bool("b", true);
    w.set_string_array("strings", {"a", "", "bc"});
    w.set_f32_array("floats", {1.0f, -2.0f});
    w.set_i32_array("ints", {7, 8, 9});
    w.add_tensor("t.f32", MOME_TENSOR_TYPE_F32, {3, 2}, [](uint8_t* dst) { std::memset(dst, 0, 24); });
    w.add_tensor("t.q8", MOME_TENSOR_TYPE_Q8_0, {32}, [](uint8_t* dst) { std::memset(dst, 0, 34); });
    w.write(tmp);
    std::vector<uint8_t> other = read_all(tmp);
    seed(dir, "metadata.gguf", other, {30, other.size() - 80, other.size() - 1});
    std::remove(tmp.c_str());
}

std::vector<uint8_t> bank_file(mome_model* model, const mome_bank_params& p, const std::string& tmp) {
    mome_bank* bank = nullptr;
    mome_fuzz::check(mome_bank_create(model, &p, &bank), "mome_bank_create");
    mome_fuzz::check(mome_bank_save(bank, tmp.c_str()), "mome_bank_save");
    mome_bank_free(bank);
    std::vector<uint8_t> bytes = read_all(tmp);
    std::remove(tmp.c_str());
    return bytes;
}

void bank_and_json_seeds(const std::string& bank_dir, const std::string& json_dir, const std::string& tmp) {
    const mome_synthetic_params mp = mome_fuzz::tiny_model_params();
    mome_fuzz::check(mome_synthetic_write(&mp, tmp.c_str()), "mome_synthetic_write");
    mome_model* model = nullptr;
    mome_fuzz::check(mome_model_open(tmp.c_str(), nullptr, &model), "mome_model_open");
    std::remove(tmp.c_str());
    const std::string bank_tmp = tmp + ".bank";

    mome_bank_params flat = mome_fuzz::tiny_bank_params();
    std::vector<uint8_t> bytes = bank_file(model, flat, bank_tmp);
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    seed(bank_dir, "flat.bank", bytes, {4, 8 + header / 2, 8 + header + 10, bytes.size() - 1});
    seed(json_dir, "bank_header.json", std::vector<uint8_t>(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header)),
         {header / 3});

    mome_bank_params product = flat;
    product.router = MOME_ROUTER_KIND_PRODUCT;
    product.routing = MOME_ROUTING_MODE_TOKEN;
    product.weight_type = MOME_TENSOR_TYPE_BF16;
    seed(bank_dir, "product_token_bf16.bank", bank_file(model, product, bank_tmp), {});

    mome_bank_params two = flat;
    two.n_layers = 2;
    two.layers[0] = 0;
    two.layers[1] = 1;
    two.weight_type = MOME_TENSOR_TYPE_F16;
    seed(bank_dir, "two_layers_f16.bank", bank_file(model, two, bank_tmp), {});
    mome_model_free(model);

    const char* snippets[] = {"{\"a\":[1,-2.5e3,true,false,null],\"b\":{\"c\":\"\\u00e9\\n\\\"\"}}", "[[[[[]]]]]", "\"\\u20ac\"",
                              "{\"data_offsets\":[12.5,24]}"};
    for (size_t i = 0; i < sizeof snippets / sizeof *snippets; ++i)
        write_all(json_dir + "/snippet" + std::to_string(i) + ".json", reinterpret_cast<const uint8_t*>(snippets[i]),
                  std::strlen(snippets[i]));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
        return 2;
    }
    const std::string root = argv[1];
    const std::string tmp = mome_fuzz::input_path("corpus");
    gguf_seeds(root + "/gguf", tmp);
    bank_and_json_seeds(root + "/bank", root + "/json", tmp);
    return 0;
}
