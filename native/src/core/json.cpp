#include "core/json.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace mome {

namespace {

constexpr int kMaxDepth = 32;

class Parser {
public:
    Parser(const std::string& s, const std::string& what) : s_(s), what_(what) {}

    Json document() {
        Json v = value(0);
        skip_space();
        if (pos_ != s_.size()) error("unexpected text after the end");
        return v;
    }

private:
    [[noreturn]] void error(const std::string& why) const {
        fail(MOME_STATUS_FORMAT_ERROR, format("%s: malformed JSON header at byte %zu: %s", what_.c_str(), pos_, why.c_str()));
    }

    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
    }

    bool consume(char c) {
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    void expect(char c) {
        if (!consume(c)) error(format("expected '%c'", c));
    }

    Json value(int depth) {
        if (depth > kMaxDepth) error("nested too deeply");
        skip_space();
        if (pos_ >= s_.size()) error("unexpected end");
        Json v;
        const char c = s_[pos_];
        if (c == '{') {
            ++pos_;
            v.kind = Json::Kind::Object;
            if (consume('}')) return v;
            do {
                skip_space();
                std::string key = string_literal();
                expect(':');
                v.members.emplace_back(std::move(key), value(depth + 1));
            } while (consume(','));
            expect('}');
        } else if (c == '[') {
            ++pos_;
            v.kind = Json::Kind::Array;
            if (consume(']')) return v;
            do v.items.push_back(value(depth + 1));
            while (consume(','));
            expect(']');
        } else if (c == '"') {
            v.kind = Json::Kind::String;
            v.text = string_literal();
        } else if (s_.compare(pos_, 4, "true") == 0) {
            pos_ += 4, v.kind = Json::Kind::Bool, v.boolean = true;
        } else if (s_.compare(pos_, 5, "false") == 0) {
            pos_ += 5, v.kind = Json::Kind::Bool;
        } else if (s_.compare(pos_, 4, "null") == 0) {
            pos_ += 4;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const size_t start = pos_;
            ++pos_;
            while (pos_ < s_.size() && std::string("0123456789.eE+-").find(s_[pos_]) != std::string::npos) ++pos_;
            v.kind = Json::Kind::Number;
            v.text = s_.substr(start, pos_ - start);
            char* end = nullptr;
            v.number = std::strtod(v.text.c_str(), &end);
            if (end != v.text.c_str() + v.text.size()) error("bad number '" + v.text + "'");
            if (!std::isfinite(v.number)) error("number '" + v.text + "' is out of range");
        } else {
            error(format("unexpected character '%c'", c));
        }
        return v;
    }

    std::string string_literal() {
        if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a string");
        ++pos_;
        std::string out;
        while (true) {
            if (pos_ >= s_.size()) error("unterminated string");
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) error("control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) error("unterminated escape");
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    if (pos_ + 4 > s_.size()) error("short \\u escape");
                    for (size_t k = 0; k < 4; ++k)
                        if (!std::isxdigit(static_cast<unsigned char>(s_[pos_ + k]))) error("\\u escape needs four hex digits");
                    const unsigned long cp = std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16);
                    pos_ += 4;
                    // Basic plane only (headers Mome writes are ASCII).
                    if (cp < 0x80) out += static_cast<char>(cp);
                    else if (cp < 0x800) out += static_cast<char>(0xC0 | (cp >> 6)), out += static_cast<char>(0x80 | (cp & 0x3F));
                    else out += static_cast<char>(0xE0 | (cp >> 12)), out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
                              out += static_cast<char>(0x80 | (cp & 0x3F));
                    break;
                }
                default: error(format("bad escape '\\%c'", e));
            }
        }
    }

    const std::string& s_;
    const std::string& what_;
    size_t pos_ = 0;
};

}  // namespace

const Json* Json::find(const std::string& key) const {
    for (const auto& [k, v] : members)
        if (k == key) return &v;
    return nullptr;
}

Json parse_json(const std::string& text, const std::string& what) { return Parser(text, what).document(); }

std::string json_quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\', out += c;
        else if (static_cast<unsigned char>(c) < 0x20) out += format("\\u%04x", c);
        else out += c;
    }
    return out + "\"";
}

}  // namespace mome
