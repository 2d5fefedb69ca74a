// libFuzzer harness of the JSON reader that bank headers go through: any text parses or
// throws mome::Error (FORMAT_ERROR), and every string it decodes survives a round trip
// through json_quote.
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/json.h"

namespace {

void check_strings(const mome::Json& v) {
    auto round_trip = [](const std::string& s) {
        const mome::Json back = mome::parse_json(mome::json_quote(s), "round trip");
        if (back.kind != mome::Json::Kind::String || back.text != s) std::abort();
    };
    if (v.kind == mome::Json::Kind::String) round_trip(v.text);
    for (const mome::Json& item : v.items) check_strings(item);
    for (const auto& [key, member] : v.members) {
        round_trip(key);
        check_strings(member);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        check_strings(mome::parse_json(text, "fuzz input"));
    } catch (const mome::Error& e) {
        if (e.status() != MOME_STATUS_FORMAT_ERROR) std::abort();
    }
    return 0;
}
