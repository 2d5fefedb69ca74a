// GGUF reader against files assembled byte by byte here (independent of the writer), and
// the writer checked by reading its output back.
#include <cstdio>
#include <cstring>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"

using namespace mome;

namespace {

struct Bytes {
    std::vector<uint8_t> b;
    template <typename T>
    Bytes& put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        b.insert(b.end(), p, p + sizeof v);
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
};

std::string temp_path(const char* name) {
    return std::string(::testing::TempDir()) + "mome_gguf_" + std::to_string(::getpid()) + "_" + name;
}

std::string write_file(const char* name, const std::vector<uint8_t>& bytes) {
    const std::string path = temp_path(name);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    return path;
}

mome_status open_status(const std::string& path, std::string* message = nullptr) {
    try {
        GgufFile::open(path);
        return MOME_STATUS_OK;
    } catch (const Error& e) {
        if (message) *message = e.what();
        return e.status();
    }
}

}  // namespace

TEST(GgufReader, ReadsEveryValueTypeIncludingNestedArrays) {
    Bytes f;
    f.b = {'G', 'G', 'U', 'F'};
    f.put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(14);
    f.str("u8").put<uint32_t>(MOME_VALUE_TYPE_UINT8).put<uint8_t>(200);
    f.str("i8").put<uint32_t>(MOME_VALUE_TYPE_INT8).put<int8_t>(-5);
    f.str("u16").put<uint32_t>(MOME_VALUE_TYPE_UINT16).put<uint16_t>(65000);
    f.str("i16").put<uint32_t>(MOME_VALUE_TYPE_INT16).put<int16_t>(-300);
    f.str("u32").put<uint32_t>(MOME_VALUE_TYPE_UINT32).put<uint32_t>(4000000000u);
    f.str("i32").put<uint32_t>(MOME_VALUE_TYPE_INT32).put<int32_t>(-70000);
    f.str("f32").put<uint32_t>(MOME_VALUE_TYPE_FLOAT32).put<float>(1.5f);
    f.str("bool").put<uint32_t>(MOME_VALUE_TYPE_BOOL).put<uint8_t>(1);
    f.str("str").put<uint32_t>(MOME_VALUE_TYPE_STRING).str("h\xC3\xA9llo");
    f.str("u64").put<uint32_t>(MOME_VALUE_TYPE_UINT64).put<uint64_t>(~0ull);
    f.str("i64").put<uint32_t>(MOME_VALUE_TYPE_INT64).put<int64_t>(-(1ll << 40));
    f.str("f64").put<uint32_t>(MOME_VALUE_TYPE_FLOAT64).put<double>(-2.25);
    f.str("strs").put<uint32_t>(MOME_VALUE_TYPE_ARRAY).put<uint32_t>(MOME_VALUE_TYPE_STRING).put<uint64_t>(2).str("a").str("bc");
    // [[1, 2], [3]] as int32 arrays inside an array.
    f.str("nested").put<uint32_t>(MOME_VALUE_TYPE_ARRAY).put<uint32_t>(MOME_VALUE_TYPE_ARRAY).put<uint64_t>(2);
    f.put<uint32_t>(MOME_VALUE_TYPE_INT32).put<uint64_t>(2).put<int32_t>(1).put<int32_t>(2);
    f.put<uint32_t>(MOME_VALUE_TYPE_INT32).put<uint64_t>(1).put<int32_t>(3);
    f.str("w").put<uint32_t>(2).put<uint64_t>(3).put<uint64_t>(2).put<uint32_t>(MOME_TENSOR_TYPE_F32).put<uint64_t>(0);
    while (f.b.size() % 32) f.b.push_back(0);
    for (int i = 0; i < 6; ++i) f.put<float>(static_cast<float>(i));

    const std::string path = write_file("all_types.gguf", f.b);
    auto file = GgufFile::open(path);
    EXPECT_EQ(value_as_u64(*file->find("u8")), 200u);
    EXPECT_EQ(value_as_i64(*file->find("i8")), -5);
    EXPECT_EQ(value_as_u64(*file->find("u16")), 65000u);
    EXPECT_EQ(value_as_i64(*file->find("i16")), -300);
    EXPECT_EQ(value_as_u64(*file->find("u32")), 4000000000u);
    EXPECT_EQ(value_as_i64(*file->find("i32")), -70000);
    EXPECT_EQ(value_as_f64(*file->find("f32")), 1.5);
    EXPECT_TRUE(value_as_bool(*file->find("bool")));
    EXPECT_EQ(value_as_string(*file->find("str")), "h\xC3\xA9llo");
    EXPECT_EQ(value_as_u64(*file->find("u64")), ~0ull);
    EXPECT_THROW(value_as_i64(*file->find("u64")), Error);
    EXPECT_EQ(value_as_i64(*file->find("i64")), -(1ll << 40));
    EXPECT_EQ(value_as_f64(*file->find("f64")), -2.25);
    EXPECT_EQ(value_as_string(*file->find("strs"), 1), "bc");
    const GgufValue& nested = *file->find("nested");
    ASSERT_EQ(nested.count, 2u);
    EXPECT_EQ(value_as_i64(nested.arrays[0], 1), 2);
    EXPECT_EQ(value_as_i64(nested.arrays[1], 0), 3);
    EXPECT_THROW(value_as_string(*file->find("u8")), Error);
    ASSERT_EQ(file->tensors().size(), 1u);
    const GgufTensor& t = file->tensors()[0];
    EXPECT_EQ(t.ne[0], 3);
    EXPECT_EQ(t.ne[1], 2);
    float data[6];
    std::memcpy(data, file->tensor_data(t), sizeof data);
    EXPECT_EQ(data[5], 5.0f);
    std::remove(path.c_str());
}

TEST(GgufReader, HostileCountsFailWithoutAllocating) {
    Bytes f;
    f.b = {'G', 'G', 'U', 'F'};
    f.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
    f.str("big").put<uint32_t>(MOME_VALUE_TYPE_ARRAY).put<uint32_t>(MOME_VALUE_TYPE_STRING).put<uint64_t>(1ull << 60);
    const std::string path = write_file("hostile.gguf", f.b);
    std::string message;
    EXPECT_EQ(open_status(path, &message), MOME_STATUS_FORMAT_ERROR);
    EXPECT_NE(message.find("more than the file can hold"), std::string::npos) << message;
    EXPECT_NE(message.find(path), std::string::npos) << message;
    std::remove(path.c_str());
}

TEST(GgufWriter, OutputReadsBackIdentically) {
    GgufWriter w;
    w.set_string("general.architecture", "test");
    w.set_u32("a", 7);
    w.set_f32_array("fs", {1.0f, -2.0f});
    w.set_string_array("ss", {"x", "", "yz"});
    w.set_bool("b", false);
    w.add_tensor("t0", MOME_TENSOR_TYPE_F32, {5}, [](uint8_t* dst) {
        for (int i = 0; i < 5; ++i) {
            const float v = i * 0.5f;
            std::memcpy(dst + 4 * i, &v, 4);
        }
    });
    w.add_tensor("t1", MOME_TENSOR_TYPE_F16, {4, 3}, [](uint8_t* dst) { std::memset(dst, 0x3c, 24); });
    const std::string path = temp_path("written.gguf");
    w.write(path);
    auto file = GgufFile::open(path);
    EXPECT_EQ(file->version(), 3u);
    EXPECT_EQ(value_as_string(*file->find("general.architecture")), "test");
    EXPECT_EQ(value_as_u64(*file->find("a")), 7u);
    EXPECT_EQ(value_as_f64(*file->find("fs"), 1), -2.0);
    EXPECT_EQ(value_as_string(*file->find("ss"), 2), "yz");
    EXPECT_EQ(value_as_string(*file->find("ss"), 1), "");
    EXPECT_FALSE(value_as_bool(*file->find("b")));
    ASSERT_EQ(file->tensors().size(), 2u);
    EXPECT_EQ(file->tensors()[1].size_bytes, 24u);
    EXPECT_EQ(file->tensors()[1].offset % 32, 0u);
    float v;
    std::memcpy(&v, file->tensor_data(file->tensors()[0]) + 16, 4);
    EXPECT_EQ(v, 2.0f);
    std::remove(path.c_str());
}

TEST(GgufWriter, FailedWriteLeavesPreviousFileIntact) {
    const std::string path = temp_path("keep.gguf");
    GgufWriter good;
    good.set_u32("version", 1);
    good.write(path);
    GgufWriter bad;
    bad.set_u32("version", 2);
    bad.add_tensor("t", MOME_TENSOR_TYPE_F32, {4}, [](uint8_t*) { throw Error(MOME_STATUS_IO_ERROR, "simulated failure"); });
    EXPECT_THROW(bad.write(path), Error);
    auto file = GgufFile::open(path);
    EXPECT_EQ(value_as_u64(*file->find("version")), 1u);
    std::remove(path.c_str());
}

// Found by tests/fuzz (gguf): a key or tensor name with a NUL inside was accepted, but the ABI
// hands names out as C strings, so "a\0b" read back as "a": another key's name, or none.
TEST(GgufReader, NamesWithANulByteAreRefused) {
    Bytes key;
    key.b = {'G', 'G', 'U', 'F'};
    key.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(2);
    key.str("a").put<uint32_t>(MOME_VALUE_TYPE_UINT8).put<uint8_t>(1);
    key.str(std::string("a\0b", 3)).put<uint32_t>(MOME_VALUE_TYPE_UINT8).put<uint8_t>(2);
    const std::string key_path = write_file("nul_key.gguf", key.b);
    std::string message;
    EXPECT_EQ(open_status(key_path, &message), MOME_STATUS_FORMAT_ERROR);
    EXPECT_NE(message.find("metadata key 1 contains a NUL byte"), std::string::npos) << message;
    std::remove(key_path.c_str());

    Bytes tensor;
    tensor.b = {'G', 'G', 'U', 'F'};
    tensor.put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(0);
    tensor.str(std::string("w\0x", 3)).put<uint32_t>(1).put<uint64_t>(4).put<uint32_t>(MOME_TENSOR_TYPE_F32).put<uint64_t>(0);
    while (tensor.b.size() % 32) tensor.b.push_back(0);
    for (int i = 0; i < 4; ++i) tensor.put<float>(1.0f);
    const std::string tensor_path = write_file("nul_tensor.gguf", tensor.b);
    EXPECT_EQ(open_status(tensor_path, &message), MOME_STATUS_FORMAT_ERROR);
    EXPECT_NE(message.find("tensor name 0 contains a NUL byte"), std::string::npos) << message;
    std::remove(tensor_path.c_str());
}

// A name longer than 64 KiB is refused from its length, before it is copied.
TEST(GgufReader, OverlongNamesAreRefusedByLength) {
    Bytes f;
    f.b = {'G', 'G', 'U', 'F'};
    f.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
    f.str(std::string(70000, 'k')).put<uint32_t>(MOME_VALUE_TYPE_UINT8).put<uint8_t>(1);
    const std::string path = write_file("long_key.gguf", f.b);
    std::string message;
    EXPECT_EQ(open_status(path, &message), MOME_STATUS_FORMAT_ERROR);
    EXPECT_NE(message.find("metadata key 0 is 70000 bytes long (1 to 65536 allowed)"), std::string::npos) << message;
    std::remove(path.c_str());
}

// Found by BadInputTests.RandomCorruptionNeverCrashes: a tensor name mutated into bytes that
// are not UTF-8 was listed, but the managed side (which decodes names as UTF-8) could not
// look it up again by the name it was given.
TEST(GgufReader, NamesThatAreNotUtf8AreRefused) {
    auto file_with_tensor = [](const std::string& name) {
        Bytes f;
        f.b = {'G', 'G', 'U', 'F'};
        f.put<uint32_t>(3).put<uint64_t>(1).put<uint64_t>(0);
        f.str(name).put<uint32_t>(1).put<uint64_t>(4).put<uint32_t>(MOME_TENSOR_TYPE_F32).put<uint64_t>(0);
        while (f.b.size() % 32) f.b.push_back(0);
        for (int i = 0; i < 4; ++i) f.put<float>(1.0f);
        return f.b;
    };
    for (const std::string bad : {std::string("bl\xC3(k"), std::string("\xE2\x82"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
                                  std::string("\xF4\x90\x80\x80"), std::string("\xFF")}) {
        const std::string path = write_file("utf8.gguf", file_with_tensor(bad));
        std::string message;
        EXPECT_EQ(open_status(path, &message), MOME_STATUS_FORMAT_ERROR);
        EXPECT_NE(message.find("tensor name 0 is not valid UTF-8"), std::string::npos) << message;
        std::remove(path.c_str());
    }
    const std::string good = "h\xC3\xA9llo.\xE2\x82\xAC.\xF0\x9F\x98\x80";
    const std::string path = write_file("utf8_ok.gguf", file_with_tensor(good));
    auto file = GgufFile::open(path);
    ASSERT_EQ(file->tensors().size(), 1u);
    EXPECT_EQ(file->tensors()[0].name, good);
    std::remove(path.c_str());
}
