#include "memory/bank_file.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <functional>

#include "core/atomic_file.h"
#include "core/crc32c.h"
#include "core/error.h"
#include "core/json.h"

namespace mome {

namespace {

constexpr const char* kFormat = "mome-bank";
// Version 2 added each layer's locality gate (signatures and threshold); version 1 files
// load with the gate off.
constexpr int kVersion = 2;
constexpr uint64_t kMaxHeaderBytes = uint64_t(64) << 20;

const char* dtype_name(mome_tensor_type t) {
    return t == MOME_TENSOR_TYPE_F32 ? "F32" : t == MOME_TENSOR_TYPE_F16 ? "F16" : "BF16";
}

std::string join(const int32_t* values, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? "," : "") + std::to_string(values[i]);
    return s;
}

std::string base_shape(const mome_llama_config& c) {
    return format("n_vocab=%lld,n_embd=%lld,n_layer=%lld,n_head=%lld,n_head_kv=%lld,n_ff=%lld",
                  static_cast<long long>(c.n_vocab), static_cast<long long>(c.n_embd), static_cast<long long>(c.n_layer),
                  static_cast<long long>(c.n_head), static_cast<long long>(c.n_head_kv), static_cast<long long>(c.n_ff));
}

// The tables of a bank in file order, with their names.
void for_each_table(const mome_bank& bank, const std::function<void(const std::string&, const TableBytes&)>& f) {
    for (size_t i = 0; i < bank.layers.size(); ++i) {
        const std::string p = "layers." + std::to_string(i) + ".";
        f(p + "wq", bank.layers[i].wq);
        f(p + "centre", bank.layers[i].centre);
        f(p + "keys", bank.layers[i].keys);
        f(p + "a", bank.layers[i].a);
        f(p + "b", bank.layers[i].b);
        f(p + "gate", bank.layers[i].gate);
    }
}

std::vector<TableBytes*> tables_of(MemoryLayer& l) { return {&l.wq, &l.centre, &l.keys, &l.a, &l.b}; }

}  // namespace

void save_bank(const mome_bank& bank, const std::string& path) {
    const mome_bank_params& p = bank.params;
    std::string meta = "{";
    auto add = [&](const std::string& key, const std::string& value) {
        meta += (meta.size() > 1 ? "," : "") + json_quote(key) + ":" + json_quote(value);
    };
    add("format", kFormat);
    add("mome.version", std::to_string(kVersion));
    add("mome.layers", join(p.layers, p.n_layers));
    add("mome.n_experts", std::to_string(p.n_experts));
    add("mome.key_dim", std::to_string(p.key_dim));
    add("mome.rank", std::to_string(p.rank));
    add("mome.top_k", std::to_string(p.top_k));
    add("mome.temperature", format("%.9g", p.temperature));
    add("mome.alpha", format("%.9g", p.alpha));
    add("mome.routing", p.routing == MOME_ROUTING_MODE_TOKEN ? "token" : "sequence");
    add("mome.router", p.router == MOME_ROUTER_KIND_PRODUCT ? "product" : "flat");
    add("mome.weight_type", dtype_name(p.weight_type));
    add("mome.seed", std::to_string(p.seed));
    add("mome.base_shape", base_shape(bank.model->config));
    add("mome.base_fingerprint", format("%08x", model_fingerprint(*bank.model)));
    for (size_t i = 0; i < bank.layers.size(); ++i)
        add("mome.gate_threshold." + std::to_string(i), format("%.9g", bank.layers[i].gate_threshold));
    for_each_table(bank, [&](const std::string& name, const TableBytes& t) {
        add("mome.crc32c." + name, format("%08x", crc32c(0, t.data, t.size)));
    });
    meta += "}";

    std::string header = "{" + json_quote("__metadata__") + ":" + meta;
    uint64_t offset = 0;
    for_each_table(bank, [&](const std::string& name, const TableBytes& t) {
        std::string shape;
        for (int64_t d : t.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
        header += "," + json_quote(name) + format(":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%llu,%llu]}",
                                                  dtype_name(t.type), shape.c_str(), static_cast<unsigned long long>(offset),
                                                  static_cast<unsigned long long>(offset + t.size));
        offset += t.size;
    });
    header += "}";
    while (header.size() % 8 != 0) header += ' ';

    AtomicFileWriter out(path);
    const uint64_t header_size = header.size();
    out.write(&header_size, 8);
    out.write(header.data(), header.size());
    for_each_table(bank, [&](const std::string&, const TableBytes& t) {
        constexpr uint64_t kChunk = uint64_t(64) << 20;
        for (uint64_t at = 0; at < t.size; at += kChunk) out.write(t.data + at, std::min(kChunk, t.size - at));
    });
    out.commit();
}

std::unique_ptr<mome_bank> load_bank(const mome_model& model, const std::string& path) {
    if (!model.is_llama) fail(MOME_STATUS_UNSUPPORTED, format("%s: not a Llama model", model.file->path().c_str()));
    auto mapping = std::make_unique<MappedFile>(path);
    const uint64_t size = mapping->size();
    auto bad = [&](const std::string& why) -> void { fail(MOME_STATUS_FORMAT_ERROR, path + ": " + why); };
    if (size < 8) bad("file is too short to be a bank (safetensors) file");
    uint64_t header_size;
    std::memcpy(&header_size, mapping->data(), 8);
    if (header_size > size - 8 || header_size > kMaxHeaderBytes)
        bad(format("header length %llu runs past the end of the file (%llu bytes)", static_cast<unsigned long long>(header_size),
                   static_cast<unsigned long long>(size)));
    const Json header = parse_json(std::string(reinterpret_cast<const char*>(mapping->data()) + 8, header_size), path);
    if (header.kind != Json::Kind::Object) bad("the header is not a JSON object");
    const Json* meta = header.find("__metadata__");
    auto text = [&](const std::string& key) -> std::string {
        const Json* v = meta ? meta->find(key) : nullptr;
        if (!v || v->kind != Json::Kind::String) bad("metadata '" + key + "' is missing");
        return v->text;
    };
    // Whole decimal numbers only, inside [lo, hi]: nothing is clamped, wrapped or truncated.
    auto digits_only = [&](const std::string& what, const std::string& s, bool sign_allowed) {
        const size_t first = sign_allowed && !s.empty() && s[0] == '-' ? 1 : 0;
        bool ok = s.size() > first;
        for (size_t i = first; ok && i < s.size(); ++i) ok = std::isdigit(static_cast<unsigned char>(s[i])) != 0;
        if (!ok) bad(what + " = '" + s + "' is not a whole number");
        errno = 0;
    };
    auto whole = [&](const std::string& what, const std::string& s, long long lo, long long hi) -> long long {
        digits_only(what, s, true);
        const long long v = std::strtoll(s.c_str(), nullptr, 10);
        if (errno == ERANGE || v < lo || v > hi) bad(format("%s = %s is outside %lld..%lld", what.c_str(), s.c_str(), lo, hi));
        return v;
    };
    auto whole_unsigned = [&](const std::string& what, const std::string& s) -> uint64_t {
        digits_only(what, s, false);
        const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
        if (errno == ERANGE) bad(what + " = " + s + " does not fit in 64 bits");
        return v;
    };
    auto integer = [&](const std::string& key, long long lo, long long hi) -> long long {
        return whole("metadata '" + key + "'", text(key), lo, hi);
    };
    // One of the words the writer uses for an enumeration.
    auto choice = [&](const std::string& key, std::initializer_list<const char*> words) -> size_t {
        const std::string s = text(key);
        size_t i = 0;
        std::string all;
        for (const char* w : words) {
            if (s == w) return i;
            all += std::string(i++ ? ", " : "") + w;
        }
        bad("metadata '" + key + "' = '" + s + "' is not one of " + all);
        return 0;
    };
    auto real = [&](const std::string& key) -> float {
        const std::string s = text(key);
        char* end = nullptr;
        const float v = std::strtof(s.c_str(), &end);
        if (s.empty() || *end != '\0') bad("metadata '" + key + "' = '" + s + "' is not a number");
        return v;
    };
    if (!meta || meta->kind != Json::Kind::Object || !meta->find("format") || text("format") != kFormat)
        bad("not a Mome bank file (its safetensors metadata has no format 'mome-bank')");
    const uint64_t version = whole_unsigned("metadata 'mome.version'", text("mome.version"));
    if (version != 1 && version != kVersion)
        fail(MOME_STATUS_UNSUPPORTED, format("%s: bank file version %s is not supported (versions 1 and %d are)", path.c_str(),
                                             text("mome.version").c_str(), kVersion));

    const mome_llama_config& c = model.config;
    const std::string expected_shape = base_shape(c), file_shape = text("mome.base_shape");
    if (file_shape != expected_shape)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("%s: this bank was made for a different base model (%s); %s has %s", path.c_str(),
                                                  file_shape.c_str(), model.file->path().c_str(), expected_shape.c_str()));
    const std::string fingerprint = format("%08x", model_fingerprint(model));
    if (text("mome.base_fingerprint") != fingerprint)
        fail(MOME_STATUS_INVALID_ARGUMENT, format("%s: this bank was made for a different base model: its weights' checksum is %s, "
                                                  "%s has %s (same shape, other weights)", path.c_str(),
                                                  text("mome.base_fingerprint").c_str(), model.file->path().c_str(), fingerprint.c_str()));

    mome_bank_params p{};
    const std::string layers = text("mome.layers");
    for (size_t at = 0; at <= layers.size();) {
        const size_t comma = std::min(layers.find(',', at), layers.size());
        if (p.n_layers >= MOME_MAX_MEMORY_LAYERS) bad(format("too many memory layers (at most %d)", MOME_MAX_MEMORY_LAYERS));
        p.layers[p.n_layers++] = static_cast<int32_t>(whole("metadata 'mome.layers' entry", layers.substr(at, comma - at), 0, INT32_MAX));
        at = comma + 1;
    }
    // Ranges wide enough for resolve_bank_params to name the problem, narrow enough for the
    // field each value lands in.
    p.n_experts = integer("mome.n_experts", INT64_MIN, INT64_MAX);
    p.key_dim = integer("mome.key_dim", INT64_MIN, INT64_MAX);
    p.rank = static_cast<int32_t>(integer("mome.rank", INT32_MIN, INT32_MAX));
    p.top_k = static_cast<int32_t>(integer("mome.top_k", INT32_MIN, INT32_MAX));
    p.temperature = real("mome.temperature");
    p.alpha = real("mome.alpha");
    p.routing = choice("mome.routing", {"sequence", "token"}) == 1 ? MOME_ROUTING_MODE_TOKEN : MOME_ROUTING_MODE_SEQUENCE;
    p.router = choice("mome.router", {"flat", "product"}) == 1 ? MOME_ROUTER_KIND_PRODUCT : MOME_ROUTER_KIND_FLAT;
    const mome_tensor_type dtypes[] = {MOME_TENSOR_TYPE_F32, MOME_TENSOR_TYPE_F16, MOME_TENSOR_TYPE_BF16};
    p.weight_type = dtypes[choice("mome.weight_type", {"F32", "F16", "BF16"})];
    p.seed = whole_unsigned("metadata 'mome.seed'", text("mome.seed"));
    try {
        p = resolve_bank_params(c, p);
    } catch (const Error& e) {
        bad(std::string("invalid bank parameters: ") + e.what());
    }

    auto bank = std::make_unique<mome_bank>();
    bank->model = &model;
    bank->params = p;
    bank->layers.resize(static_cast<size_t>(p.n_layers));
    const uint64_t data_start = 8 + header_size, data_size = size - data_start;
    size_t expected_tables = 0;
    auto check_crc = [&](const std::string& name, const TableBytes& table) {
        const std::string want = text("mome.crc32c." + name);
        const std::string have = format("%08x", crc32c(0, table.data, table.size));
        if (want != have)
            bad(format("checksum mismatch in tensor '%s' (stored %s, computed %s): the file is corrupted", name.c_str(),
                       want.c_str(), have.c_str()));
    };
    // A gate's signature count is the file's own; its bytes must lie inside the data.
    auto load_gate = [&](int i, MemoryLayer& layer) {
        const std::string name = "layers." + std::to_string(i) + ".gate";
        const Json* info = header.find(name);
        if (!info || info->kind != Json::Kind::Object) bad("tensor '" + name + "' is missing");
        const Json* dt = info->find("dtype");
        if (!dt || dt->kind != Json::Kind::String || dt->text != "F32") bad("tensor '" + name + "' must have dtype F32");
        const Json* shape = info->find("shape");
        const Json* offsets = info->find("data_offsets");
        const double max_rows = static_cast<double>(data_size) / 4.0 / static_cast<double>(p.key_dim);
        if (!shape || shape->kind != Json::Kind::Array || shape->items.size() != 2 || shape->items[0].kind != Json::Kind::Number ||
            shape->items[1].kind != Json::Kind::Number || shape->items[1].number != static_cast<double>(p.key_dim) ||
            !(shape->items[0].number >= 0) || shape->items[0].number > max_rows ||
            shape->items[0].number != std::floor(shape->items[0].number))
            bad(format("tensor '%s' must have shape [signatures, %lld] within the file", name.c_str(), static_cast<long long>(p.key_dim)));
        const auto rows = static_cast<int64_t>(shape->items[0].number);
        const uint64_t bytes = static_cast<uint64_t>(rows) * static_cast<uint64_t>(p.key_dim) * 4;
        if (!offsets || offsets->kind != Json::Kind::Array || offsets->items.size() != 2 ||
            offsets->items[0].kind != Json::Kind::Number || offsets->items[1].kind != Json::Kind::Number)
            bad("tensor '" + name + "' has no valid data_offsets");
        const double begin = offsets->items[0].number, end = offsets->items[1].number;
        if (begin < 0 || begin != std::floor(begin) || end < begin || end > static_cast<double>(data_size) ||
            end - begin != static_cast<double>(bytes))
            bad(format("tensor '%s' data [%.0f, %.0f) does not fit its %llu bytes inside the file's %llu bytes of data", name.c_str(),
                       begin, end, static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(data_size)));
        layer.gate.type = MOME_TENSOR_TYPE_F32;
        layer.gate.shape = {rows, p.key_dim};
        layer.gate.data = mapping->data() + data_start + static_cast<uint64_t>(begin);
        layer.gate.size = bytes;
        check_crc(name, layer.gate);
        const float threshold = real("mome.gate_threshold." + std::to_string(i));
        if (!(threshold >= -2.0f && threshold <= 1.0f))
            bad(format("metadata 'mome.gate_threshold.%d' = %g is outside [-2, 1]", i, threshold));
        layer.gate_threshold = threshold;
    };
    for (int i = 0; i < p.n_layers; ++i) {
        MemoryLayer& layer = bank->layers[static_cast<size_t>(i)];
        layer.block = p.layers[i];
        layer.wq.type = MOME_TENSOR_TYPE_F32;
        layer.wq.shape = wq_shape(p, c);
        layer.centre.type = MOME_TENSOR_TYPE_F32;
        layer.centre.shape = centre_shape(c);
        layer.keys.type = layer.a.type = layer.b.type = p.weight_type;
        layer.keys.shape = keys_shape(p);
        layer.a.shape = layer.b.shape = expert_shape(p, c);
        const char* names[] = {"wq", "centre", "keys", "a", "b"};
        const std::vector<TableBytes*> tables = tables_of(layer);
        for (size_t t = 0; t < tables.size(); ++t, ++expected_tables) {
            const std::string name = "layers." + std::to_string(i) + "." + names[t];
            TableBytes& table = *tables[t];
            const Json* info = header.find(name);
            if (!info || info->kind != Json::Kind::Object) bad("tensor '" + name + "' is missing");
            const Json* dt = info->find("dtype");
            if (!dt || dt->kind != Json::Kind::String || dt->text != dtype_name(table.type))
                bad(format("tensor '%s' must have dtype %s", name.c_str(), dtype_name(table.type)));
            const Json* shape = info->find("shape");
            bool same = shape && shape->kind == Json::Kind::Array && shape->items.size() == table.shape.size();
            for (size_t d = 0; same && d < table.shape.size(); ++d)
                same = shape->items[d].kind == Json::Kind::Number && shape->items[d].number == static_cast<double>(table.shape[d]);
            if (!same) bad("tensor '" + name + "' has a shape that does not match the bank's parameters");
            const Json* offsets = info->find("data_offsets");
            if (!offsets || offsets->kind != Json::Kind::Array || offsets->items.size() != 2 ||
                offsets->items[0].kind != Json::Kind::Number || offsets->items[1].kind != Json::Kind::Number)
                bad("tensor '" + name + "' has no valid data_offsets");
            const double begin = offsets->items[0].number, end = offsets->items[1].number;
            if (begin != std::floor(begin) || end != std::floor(end))
                bad(format("tensor '%s' has data_offsets [%s, %s] that are not whole numbers of bytes", name.c_str(),
                           offsets->items[0].text.c_str(), offsets->items[1].text.c_str()));
            uint64_t bytes = element_size(table.type);
            for (int64_t d : table.shape) bytes *= static_cast<uint64_t>(d);
            if (begin < 0 || end < begin || end > static_cast<double>(data_size) || end - begin != static_cast<double>(bytes))
                bad(format("tensor '%s' data [%.0f, %.0f) does not fit its %llu bytes inside the file's %llu bytes of data",
                           name.c_str(), begin, end, static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(data_size)));
            table.data = mapping->data() + data_start + static_cast<uint64_t>(begin);
            table.size = bytes;
            check_crc(name, table);
        }
        if (version >= 2) {
            ++expected_tables;
            load_gate(i, layer);
        }
    }
    if (header.members.size() != expected_tables + 1) bad("the file holds tensors that are not part of a bank");
    bank->mapping = std::move(mapping);
    return bank;
}

}  // namespace mome
