// Enum values that come in through the C ABI, read as the integers the caller stored.
// C lets a caller put any int into an enum object (and C# passes plain ints); C++ makes
// loading a value outside the enum's range undefined behaviour (UBSan's -fsanitize=enum
// flags it). So a value is checked through its bytes, and loaded as the enum only once it
// is known to be one of the enum's values.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace mome {

template <typename E>
int32_t abi_enum(const E& value) {
    static_assert(std::is_enum_v<E> && sizeof(E) == sizeof(int32_t), "an ABI enum is 32 bits wide");
    int32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

}  // namespace mome
