// The JSON reader of bank headers: what it accepts, and the malformed or hostile text it
// refuses with FORMAT_ERROR naming the byte offset.
#include <gtest/gtest.h>
#include <string>

#include "core/error.h"
#include "core/json.h"

using namespace mome;

namespace {

std::string refusal(const std::string& text) {
    try {
        parse_json(text, "test.json");
    } catch (const Error& e) {
        EXPECT_EQ(e.status(), MOME_STATUS_FORMAT_ERROR) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "accepted: " << text;
    return "";
}

}  // namespace

TEST(Json, ReadsObjectsArraysStringsAndNumbers) {
    const Json v = parse_json("{\"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": \"\\u00e9\\n\\\"x\"}}", "test.json");
    ASSERT_EQ(v.kind, Json::Kind::Object);
    const Json* a = v.find("a");
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->items.size(), 5u);
    EXPECT_EQ(a->items[1].number, -2500.0);
    EXPECT_EQ(a->items[1].text, "-2.5e3");
    EXPECT_TRUE(a->items[2].boolean);
    EXPECT_EQ(a->items[4].kind, Json::Kind::Null);
    EXPECT_EQ(v.find("b")->find("c")->text, "\xC3\xA9\n\"x");
    EXPECT_EQ(parse_json(json_quote("q\"\\\x01z"), "test.json").text, "q\"\\\x01z");
}

// Found in review while fuzzing: strtoul read "\u-001" and "\u 12x" as escapes (a sign or
// spaces taken for hex digits), decoding bytes the text never held.
TEST(Json, UnicodeEscapesNeedFourHexDigits) {
    EXPECT_EQ(parse_json("\"\\u20AC\"", "test.json").text, "\xE2\x82\xAC");
    for (const char* bad : {"\"\\u-001\"", "\"\\u 12a\"", "\"\\u+7FF\"", "\"\\u12G4\"", "\"\\u0x12\""})
        EXPECT_NE(refusal(bad).find("four hex digits"), std::string::npos) << bad;
    EXPECT_NE(refusal("\"\\u12").find("short \\u escape"), std::string::npos);
}

TEST(Json, NumbersOutOfRangeAreRefused) {
    EXPECT_NE(refusal("[1e400]").find("out of range"), std::string::npos);
    EXPECT_NE(refusal("{\"x\": -1e999}").find("out of range"), std::string::npos);
    EXPECT_EQ(parse_json("[1e300]", "test.json").items[0].number, 1e300);
}

TEST(Json, MalformedTextIsRefusedNamingTheOffset) {
    EXPECT_NE(refusal("{\"a\" 1}").find("at byte 5: expected ':'"), std::string::npos);
    EXPECT_NE(refusal("[1, 2").find("expected ']'"), std::string::npos);
    EXPECT_NE(refusal("\"abc").find("unterminated string"), std::string::npos);
    EXPECT_NE(refusal("\"a\x01\"").find("control character"), std::string::npos);
    EXPECT_NE(refusal("\"\\q\"").find("bad escape"), std::string::npos);
    EXPECT_NE(refusal("[1-2]").find("bad number '1-2'"), std::string::npos);
    EXPECT_NE(refusal("{} x").find("unexpected text after the end"), std::string::npos);
    EXPECT_NE(refusal("").find("unexpected end"), std::string::npos);
    EXPECT_NE(refusal(std::string(34, '[') + std::string(34, ']')).find("nested too deeply"), std::string::npos);
    EXPECT_EQ(parse_json(std::string(33, '[') + std::string(33, ']'), "test.json").kind, Json::Kind::Array);
}
