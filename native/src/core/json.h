// A small JSON reader for file headers (safetensors). Depth and size are bounded; any
// syntax error throws FORMAT_ERROR with the byte offset.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mome {

struct Json {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    double number = 0;
    std::string text;  // String: the decoded string; Number: the literal as written
    std::vector<Json> items;
    std::vector<std::pair<std::string, Json>> members;  // in file order

    const Json* find(const std::string& key) const;
};

// `what` names the document in error messages (e.g. the file path).
Json parse_json(const std::string& text, const std::string& what);

// Escapes a string for writing into JSON.
std::string json_quote(const std::string& s);

}  // namespace mome
