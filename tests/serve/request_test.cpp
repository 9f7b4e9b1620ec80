#include "kiln/serve/request.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln::serve {
namespace {

RequestError refused(const std::string& body, const RequestLimits& limits = {}) {
  PredictRequest req;
  RequestError err;
  EXPECT_FALSE(parse_predict_request(body, limits, req, err)) << body;
  EXPECT_TRUE(req.texts.empty());
  return err;
}

TEST(PredictRequest, ParsesTextsAndTopK) {
  PredictRequest req;
  RequestError err;
  ASSERT_TRUE(parse_predict_request(R"({"texts": ["a b", "ünïcødé \"q\""], "top_k": 3})", {}, req, err));
  EXPECT_EQ(req.texts, (std::vector<std::string>{"a b", "ünïcødé \"q\""}));
  EXPECT_EQ(req.top_k, 3u);
  ASSERT_TRUE(parse_predict_request(R"({"texts": [""]})", {}, req, err));
  EXPECT_EQ(req.top_k, 1u);
  EXPECT_EQ(req.texts, (std::vector<std::string>{""}));
}

TEST(PredictRequest, RefusesEachBadBodyWithItsCodeAndMessage) {
  RequestLimits small;
  small.max_body_bytes = 64;
  small.max_texts = 2;
  small.max_text_bytes = 5;
  small.max_nesting = 3;

  auto e = refused(std::string(65, ' '), small);
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.code, "body_too_large");
  EXPECT_EQ(e.message, "request body is 65 bytes; the limit is 64 (split the texts over several requests)");

  e = refused(" \n");
  EXPECT_EQ(e.code, "empty_body");
  EXPECT_EQ(e.message, "request body is empty; send {\"texts\": [\"...\"]}");

  e = refused(R"({"texts": [[["x"]]]})", small);
  EXPECT_EQ(e.code, "nesting_too_deep");
  EXPECT_EQ(e.message,
            "JSON nests arrays/objects deeper than 3 levels; a predict request is {\"texts\": [\"...\"], \"top_k\": k}");

  e = refused(R"({"texts": ["a",]})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_json");
  // The server's own words: the offset and what was wrong, never the JSON library's message.
  EXPECT_EQ(e.message, "request body is not valid UTF-8 JSON at byte 16: unexpected character ']'; send {\"texts\": [\"...\"]}");

  e = refused("{\"texts\": [\"\xff\"]}");
  EXPECT_EQ(e.code, "invalid_json");
  EXPECT_NE(e.message.find("UTF-8"), std::string::npos) << e.message;

  e = refused(R"({"texts": 1e99999})");  // found by fuzz_predict_request: out_of_range, not parse_error
  EXPECT_EQ(e.code, "invalid_json");
  EXPECT_EQ(e.message, "request body holds a number outside the range of a 64-bit float (e.g. 1e400); send {\"texts\": [\"...\"]}");
  EXPECT_EQ(e.message.find("json.exception"), std::string::npos) << e.message;

  e = refused(R"(["a"])");
  EXPECT_EQ(e.code, "invalid_request");
  EXPECT_EQ(e.message, "request body must be a JSON object {\"texts\": [...]}, got array");

  e = refused(R"({"text": ["a"]})");
  EXPECT_EQ(e.code, "unknown_field");
  EXPECT_EQ(e.message, "unknown field 'text'; a predict request has 'texts' and optionally 'top_k'");

  e = refused(R"({})");
  EXPECT_EQ(e.code, "missing_field");
  EXPECT_EQ(e.message, "field 'texts' is missing; send {\"texts\": [\"...\"]}");

  e = refused(R"({"texts": "a"})");
  EXPECT_EQ(e.code, "wrong_type");
  EXPECT_EQ(e.message, "field 'texts' must be a list of strings, got string");

  e = refused(R"({"texts": ["a", 7]})");
  EXPECT_EQ(e.code, "wrong_type");
  EXPECT_EQ(e.message, "texts[1] must be a string, got number");

  e = refused(R"({"texts": []})");
  EXPECT_EQ(e.code, "empty_texts");

  e = refused(R"({"texts": ["a", "b", "c"]})", small);
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.code, "too_many_texts");
  EXPECT_EQ(e.message, "request has 3 texts; the limit is 2 per request (split it)");

  e = refused(R"({"texts": ["abcdef"]})", small);
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.code, "text_too_long");
  EXPECT_EQ(e.message, "texts[0] is 6 bytes; the limit is 5");

  for (const char* k : {"0", "-1", "1.5", "\"2\"", "101", "null"}) {
    e = refused(std::string(R"({"texts": ["a"], "top_k": )") + k + "}");
    EXPECT_EQ(e.code, "invalid_top_k") << k;
    EXPECT_EQ(e.message, std::string("field 'top_k' must be an integer from 1 to 100, got ") + k);
  }
}

TEST(PredictRequest, NestingCountsOnlyStructureOutsideStrings) {
  EXPECT_EQ(json_nesting_depth(R"({"a": "[[[[{{{{", "b": [1, [2]]})", 100), 3u);
  EXPECT_EQ(json_nesting_depth(R"("\"[[[")", 100), 0u);
  EXPECT_EQ(json_nesting_depth(std::string(100000, '['), 16), 17u);  // stops early
  EXPECT_EQ(json_nesting_depth("]]]}}", 16), 0u);
}

TEST(PredictRequest, ErrorBodyIsTheDocumentedJson) {
  EXPECT_EQ(error_body({400, "wrong_type", "texts[1] must be a \"string\"", ""}),
            R"({"error":{"code":"wrong_type","message":"texts[1] must be a \"string\""}})");
}

}  // namespace
}  // namespace kiln::serve
