#include "gguf/gguf_file.h"

#include <cstring>
#include <limits>

#include "core/error.h"
#include "gguf/tensor_types.h"

namespace mome {

namespace {

constexpr uint32_t kMaxArrayDepth = 8;
constexpr uint64_t kMaxNameLength = 1u << 16;

bool valid_value_type(uint32_t t) { return t <= MOME_VALUE_TYPE_FLOAT64; }

// Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
bool valid_utf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        uint32_t cp = n == 1 ? c : c & (0x7F >> n);
        for (size_t k = 1; k < n; ++k) {
            const auto cont = static_cast<unsigned char>(s[i + k]);
            if ((cont >> 6) != 0x2) return false;
            cp = (cp << 6) | (cont & 0x3F);
        }
        static const uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_of[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += n;
    }
    return true;
}

// Bounds-checked reads over the mapping; every failure names the file and the offset.
class Cursor {
public:
    Cursor(const std::string& path, const uint8_t* data, uint64_t size)
        : path_(path), data_(data), size_(size) {}

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }

    [[noreturn]] void error(const std::string& what) const {
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: %s (at byte %llu of %llu)", path_.c_str(), what.c_str(),
                                              static_cast<unsigned long long>(pos_),
                                              static_cast<unsigned long long>(size_)));
    }

    const uint8_t* take(uint64_t n, const char* what) {
        if (n > remaining())
            error(format("file is truncated: %s needs %llu bytes, %llu remain", what,
                         static_cast<unsigned long long>(n), static_cast<unsigned long long>(remaining())));
        const uint8_t* p = data_ + pos_;
        pos_ += n;
        return p;
    }

    template <typename T>
    T read(const char* what) {
        T v;
        std::memcpy(&v, take(sizeof(T), what), sizeof(T));
        return v;
    }

    // A key or tensor name: its length is checked before anything is copied.
    std::string read_name(const char* what, uint64_t index) {
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            error(format("%s %llu of %llu bytes runs past the end of the file", what, static_cast<unsigned long long>(index),
                         static_cast<unsigned long long>(len)));
        if (len == 0 || len > kMaxNameLength)
            error(format("%s %llu is %llu bytes long (1 to %llu allowed)", what, static_cast<unsigned long long>(index),
                         static_cast<unsigned long long>(len), static_cast<unsigned long long>(kMaxNameLength)));
        std::string name(reinterpret_cast<const char*>(take(len, what)), len);
        // The ABI hands names out as C strings, and the managed side looks them up as UTF-8
        // text: a name with a NUL inside, or that is not UTF-8, would read as another name.
        if (name.find('\0') != std::string::npos)
            error(format("%s %llu contains a NUL byte", what, static_cast<unsigned long long>(index)));
        if (!valid_utf8(name)) error(format("%s %llu is not valid UTF-8", what, static_cast<unsigned long long>(index)));
        return name;
    }

    std::string read_string(const char* what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > remaining())
            error(format("%s of %llu bytes runs past the end of the file", what, static_cast<unsigned long long>(len)));
        const uint8_t* p = take(len, what);
        return std::string(reinterpret_cast<const char*>(p), len);
    }

private:
    const std::string& path_;
    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

// Smallest number of bytes one element of `type` occupies in the file; used to reject
// counts that could not fit before anything is allocated.
uint64_t min_encoded_size(mome_value_type type) {
    if (type == MOME_VALUE_TYPE_STRING) return 8;
    if (type == MOME_VALUE_TYPE_ARRAY) return 12;
    return gguf_scalar_size(type);
}

void read_array_body(Cursor& c, GgufValue& out, uint32_t depth, const std::string& key);

void read_value(Cursor& c, mome_value_type type, GgufValue& out, uint32_t depth, const std::string& key) {
    out.type = type;
    out.element_type = type;
    out.count = 1;
    if (type == MOME_VALUE_TYPE_STRING)
        out.strings.push_back(c.read_string(format("string value of '%s'", key.c_str()).c_str()));
    else if (type == MOME_VALUE_TYPE_ARRAY)
        read_array_body(c, out, depth, key);
    else
        out.raw = c.take(gguf_scalar_size(type), format("value of '%s'", key.c_str()).c_str());
}

// An array is its element type, its length, then the elements; an element that is itself
// an array repeats this shape.
void read_array_body(Cursor& c, GgufValue& out, uint32_t depth, const std::string& key) {
    if (depth >= kMaxArrayDepth) c.error(format("'%s' nests arrays more than %u deep", key.c_str(), kMaxArrayDepth));
    out.type = MOME_VALUE_TYPE_ARRAY;
    const uint32_t elem = c.read<uint32_t>("array element type");
    if (!valid_value_type(elem)) c.error(format("array '%s' has unknown element type %u", key.c_str(), elem));
    out.element_type = static_cast<mome_value_type>(elem);
    const uint64_t count = c.read<uint64_t>("array length");
    if (count > c.remaining() / min_encoded_size(out.element_type))
        c.error(format("array '%s' claims %llu elements of type %s, more than the file can hold", key.c_str(),
                       static_cast<unsigned long long>(count), gguf_type_name(out.element_type)));
    out.count = count;
    if (out.element_type == MOME_VALUE_TYPE_STRING) {
        out.strings.reserve(count);
        for (uint64_t i = 0; i < count; ++i) out.strings.push_back(c.read_string("array string"));
    } else if (out.element_type == MOME_VALUE_TYPE_ARRAY) {
        out.arrays.resize(count);
        for (uint64_t i = 0; i < count; ++i) read_array_body(c, out.arrays[i], depth + 1, key);
    } else {
        out.raw = c.take(count * gguf_scalar_size(out.element_type), "array data");
    }
}

}  // namespace

size_t gguf_scalar_size(mome_value_type type) {
    switch (type) {
        case MOME_VALUE_TYPE_UINT8:
        case MOME_VALUE_TYPE_INT8:
        case MOME_VALUE_TYPE_BOOL: return 1;
        case MOME_VALUE_TYPE_UINT16:
        case MOME_VALUE_TYPE_INT16: return 2;
        case MOME_VALUE_TYPE_UINT32:
        case MOME_VALUE_TYPE_INT32:
        case MOME_VALUE_TYPE_FLOAT32: return 4;
        case MOME_VALUE_TYPE_UINT64:
        case MOME_VALUE_TYPE_INT64:
        case MOME_VALUE_TYPE_FLOAT64: return 8;
        default: return 0;
    }
}

const char* gguf_type_name(mome_value_type type) {
    static const char* const names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                        "bool",  "string", "array",  "uint64", "int64", "float64"};
    return valid_value_type(type) ? names[type] : "unknown";
}

}  // namespace mome

namespace mome {

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
    std::unique_ptr<GgufFile> file(new GgufFile(path));
    file->parse();
    return file;
}

void GgufFile::parse() {
    const std::string& p = map_.path();
    Cursor c(p, map_.data(), map_.size());
    if (map_.size() < 4) c.error("file is too short to be GGUF");
    if (std::memcmp(map_.data(), "GGUF", 4) != 0) {
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: not a GGUF file (the first bytes are not the magic 'GGUF')", p.c_str()));
    }
    c.take(4, "magic");
    version_ = c.read<uint32_t>("version");
    if (version_ != 2 && version_ != 3) {
        const uint32_t swapped = __builtin_bswap32(version_);
        const char* hint = (swapped == 2 || swapped == 3) ? " (a big-endian file; only little-endian is supported)" : "";
        fail(MOME_STATUS_UNSUPPORTED,
             format("%s: GGUF version %u is not supported (versions 2 and 3 are)%s", p.c_str(), version_, hint));
    }
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // Each entry needs at least a key length, a type and one byte of value.
    if (n_kv > c.remaining() / 13)
        c.error(format("metadata count %llu is more than the file can hold", static_cast<unsigned long long>(n_kv)));
    // Each tensor info needs at least a name length, n_dims, one dim, a type and an offset.
    if (n_tensors > c.remaining() / 32)
        c.error(format("tensor count %llu is more than the file can hold", static_cast<unsigned long long>(n_tensors)));

    keys_.reserve(n_kv);
    values_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
        std::string key = c.read_name("metadata key", i);
        const uint32_t type = c.read<uint32_t>("metadata type");
        if (!valid_value_type(type)) c.error(format("metadata '%s' has unknown type %u", key.c_str(), type));
        if (key_index_.count(key)) c.error(format("metadata key '%s' appears twice", key.c_str()));
        GgufValue value;
        read_value(c, static_cast<mome_value_type>(type), value, 0, key);
        key_index_.emplace(key, keys_.size());
        keys_.push_back(std::move(key));
        values_.push_back(std::move(value));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (a->type != MOME_VALUE_TYPE_UINT32) c.error("general.alignment must be a uint32");
        const uint32_t align = static_cast<uint32_t>(value_as_u64(*a));
        if (align == 0 || (align & (align - 1)) != 0) c.error(format("general.alignment %u is not a power of two", align));
        alignment_ = align;
    }

    tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensor t;
        t.name = c.read_name("tensor name", i);
        t.n_dims = c.read<uint32_t>("tensor dimension count");
        if (t.n_dims == 0 || t.n_dims > MOME_MAX_DIMS)
            c.error(format("tensor '%s' has %u dimensions (1 to %d allowed)", t.name.c_str(), t.n_dims, MOME_MAX_DIMS));
        int64_t n = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            const uint64_t ne = c.read<uint64_t>("tensor dimension");
            if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
                (ne != 0 && static_cast<uint64_t>(n) > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne))
                c.error(format("tensor '%s' has dimensions whose product overflows", t.name.c_str()));
            t.ne[d] = static_cast<int64_t>(ne);
            n *= static_cast<int64_t>(ne);
        }
        t.n_elements = n;
        t.type = c.read<uint32_t>("tensor type");
        const TensorTypeTraits* traits = tensor_type_traits(t.type);
        if (!traits) c.error(format("tensor '%s' has unknown tensor type %u", t.name.c_str(), t.type));
        if (t.ne[0] % traits->block_size != 0)
            c.error(format("tensor '%s' of type %s has a row of %lld elements, not a multiple of its block size %lld",
                           t.name.c_str(), traits->name, static_cast<long long>(t.ne[0]),
                           static_cast<long long>(traits->block_size)));
        const uint64_t blocks = static_cast<uint64_t>(n / traits->block_size);
        if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(traits->type_size))
            c.error(format("tensor '%s' is too large", t.name.c_str()));
        t.size_bytes = blocks * static_cast<uint64_t>(traits->type_size);
        t.offset = c.read<uint64_t>("tensor offset");
        if (t.offset % alignment_ != 0)
            c.error(format("tensor '%s' offset %llu is not a multiple of the alignment %u", t.name.c_str(),
                           static_cast<unsigned long long>(t.offset), alignment_));
        if (tensor_index_.count(t.name)) c.error(format("tensor '%s' appears twice", t.name.c_str()));
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    const uint64_t pos = c.pos();
    data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
    const uint64_t size = map_.size();
    if (!tensors_.empty() && data_offset_ > size)
        fail(MOME_STATUS_FORMAT_ERROR,
             format("%s: general.alignment %u puts the tensor data at byte %llu, past the end of the file (%llu bytes)", p.c_str(),
                    alignment_, static_cast<unsigned long long>(data_offset_), static_cast<unsigned long long>(size)));
    for (const GgufTensor& t : tensors_) {
        const bool fits = data_offset_ <= size && t.offset <= size - data_offset_ &&
                          t.size_bytes <= size - data_offset_ - t.offset;
        if (!fits)
            fail(MOME_STATUS_FORMAT_ERROR,
                 format("%s: tensor '%s' (%llu bytes at data offset %llu) extends past the end of the file (%llu bytes)",
                        p.c_str(), t.name.c_str(), static_cast<unsigned long long>(t.size_bytes),
                        static_cast<unsigned long long>(t.offset), static_cast<unsigned long long>(size)));
    }
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = key_index_.find(key);
    return it == key_index_.end() ? nullptr : &values_[it->second];
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// The scalar type an element access reads, after checking the index.
mome_value_type element_scalar_type(const GgufValue& v, uint64_t index) {
    if (v.type == MOME_VALUE_TYPE_ARRAY) {
        if (index >= v.count)
            fail(MOME_STATUS_OUT_OF_RANGE, format("index %llu is past the end of an array of %llu",
                                                  static_cast<unsigned long long>(index),
                                                  static_cast<unsigned long long>(v.count)));
        return v.element_type;
    }
    if (index != 0) fail(MOME_STATUS_OUT_OF_RANGE, format("index %llu given for a %s value that is not an array",
                                                         static_cast<unsigned long long>(index), gguf_type_name(v.type)));
    return v.type;
}

template <typename T>
T load(const GgufValue& v, uint64_t index) {
    T x;
    std::memcpy(&x, v.raw + index * sizeof(T), sizeof(T));
    return x;
}

[[noreturn]] void mismatch(mome_value_type have, const char* want) {
    fail(MOME_STATUS_TYPE_MISMATCH, format("value of type %s cannot be read as %s", gguf_type_name(have), want));
}

}  // namespace

int64_t value_as_i64(const GgufValue& v, uint64_t index) {
    const mome_value_type t = element_scalar_type(v, index);
    switch (t) {
        case MOME_VALUE_TYPE_UINT8: return load<uint8_t>(v, index);
        case MOME_VALUE_TYPE_INT8: return load<int8_t>(v, index);
        case MOME_VALUE_TYPE_UINT16: return load<uint16_t>(v, index);
        case MOME_VALUE_TYPE_INT16: return load<int16_t>(v, index);
        case MOME_VALUE_TYPE_UINT32: return load<uint32_t>(v, index);
        case MOME_VALUE_TYPE_INT32: return load<int32_t>(v, index);
        case MOME_VALUE_TYPE_INT64: return load<int64_t>(v, index);
        case MOME_VALUE_TYPE_BOOL: return load<uint8_t>(v, index) != 0;
        case MOME_VALUE_TYPE_UINT64: {
            const uint64_t u = load<uint64_t>(v, index);
            if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                fail(MOME_STATUS_OUT_OF_RANGE, format("uint64 value %llu does not fit in int64", static_cast<unsigned long long>(u)));
            return static_cast<int64_t>(u);
        }
        default: mismatch(t, "an integer");
    }
}

uint64_t value_as_u64(const GgufValue& v, uint64_t index) {
    const mome_value_type t = element_scalar_type(v, index);
    if (t == MOME_VALUE_TYPE_UINT64) return load<uint64_t>(v, index);
    const int64_t i = value_as_i64(v, index);
    if (i < 0) fail(MOME_STATUS_OUT_OF_RANGE, format("negative value %lld cannot be read as unsigned", static_cast<long long>(i)));
    return static_cast<uint64_t>(i);
}

double value_as_f64(const GgufValue& v, uint64_t index) {
    const mome_value_type t = element_scalar_type(v, index);
    if (t == MOME_VALUE_TYPE_FLOAT32) return load<float>(v, index);
    if (t == MOME_VALUE_TYPE_FLOAT64) return load<double>(v, index);
    if (t == MOME_VALUE_TYPE_UINT64) return static_cast<double>(load<uint64_t>(v, index));
    if (t == MOME_VALUE_TYPE_STRING || t == MOME_VALUE_TYPE_ARRAY || t == MOME_VALUE_TYPE_BOOL) mismatch(t, "a number");
    return static_cast<double>(value_as_i64(v, index));
}

bool value_as_bool(const GgufValue& v, uint64_t index) {
    const mome_value_type t = element_scalar_type(v, index);
    if (t != MOME_VALUE_TYPE_BOOL) mismatch(t, "a bool");
    return load<uint8_t>(v, index) != 0;
}

const std::string& value_as_string(const GgufValue& v, uint64_t index) {
    const mome_value_type t = element_scalar_type(v, index);
    if (t != MOME_VALUE_TYPE_STRING) mismatch(t, "a string");
    return v.strings[v.type == MOME_VALUE_TYPE_ARRAY ? index : 0];
}

}  // namespace mome
