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
  EXPECT_TRUE(req.images.empty());
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
  EXPECT_EQ(e.message, "unknown field 'text'; a predict request has 'texts' (or 'inputs') and optionally 'top_k'");

  e = refused(R"({})");
  EXPECT_EQ(e.code, "missing_field");
  EXPECT_EQ(e.message, "field 'texts' is missing; send {\"texts\": [\"...\"]} or {\"inputs\": [{\"text\": \"...\"}]}");

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

TEST(PredictRequest, ParsesInputsWithTextAndBase64Images) {
  PredictRequest req;
  RequestError err;
  // "iVBORw==" is the bytes 0x89 'P' 'N' 'G'; "data:" URLs as a browser's FileReader writes them.
  ASSERT_TRUE(parse_predict_request(
      R"({"inputs": [{"text": "a", "image": "iVBORw=="}, {"image": "data:image/png;base64,QUJD", "text": ""}], "top_k": 2})",
      {}, req, err))
      << err.message;
  EXPECT_EQ(req.texts, (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(req.images, (std::vector<std::string>{"\x89PNG", "ABC"}));
  EXPECT_EQ(req.size(), 2u);
  EXPECT_EQ(req.top_k, 2u);
  ASSERT_TRUE(parse_predict_request(R"({"inputs": [{"image": "QUI"}]})", {}, req, err)) << err.message;
  EXPECT_TRUE(req.texts.empty());
  EXPECT_EQ(req.images, (std::vector<std::string>{"AB"}));
  ASSERT_TRUE(parse_predict_request(R"({"inputs": [{"text": "x"}]})", {}, req, err)) << err.message;
  EXPECT_EQ(req.texts, (std::vector<std::string>{"x"}));
  EXPECT_TRUE(req.images.empty());
}

TEST(PredictRequest, RefusesEachBadInputNamingIt) {
  RequestLimits small;
  small.max_texts = 2;
  small.max_image_bytes = 4;
  auto e = refused(R"({"texts": ["a"], "inputs": []})");
  EXPECT_EQ(e.code, "conflicting_fields");
  EXPECT_EQ(e.message, "the request has both 'texts' and 'inputs'; send one: {\"texts\": [...]} or "
                       "{\"inputs\": [{\"text\": ..., \"image\": ...}]}");
  e = refused(R"({"inputs": {"text": "a"}})");
  EXPECT_EQ(e.code, "wrong_type");
  EXPECT_EQ(e.message, "field 'inputs' must be a list of objects {\"text\": ..., \"image\": ...}, got object");
  e = refused(R"({"inputs": []})");
  EXPECT_EQ(e.code, "empty_inputs");
  e = refused(R"({"inputs": [{"text": "a"}, {"text": "b"}, {"text": "c"}]})", small);
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.message, "request has 3 inputs; the limit is 2 per request (split it)");
  e = refused(R"({"inputs": [{"text": "a"}, "b"]})");
  EXPECT_EQ(e.message, "inputs[1] must be an object {\"text\": ..., \"image\": ...}, got string");
  e = refused(R"({"inputs": [{"text": "a", "img": "QUJD"}]})");
  EXPECT_EQ(e.code, "unknown_field");
  EXPECT_EQ(e.message, "inputs[0] has an unknown field 'img'; an input has 'text' and/or 'image'");
  e = refused(R"({"inputs": [{}]})");
  EXPECT_EQ(e.code, "empty_input");
  EXPECT_EQ(e.message, "inputs[0] has neither 'text' nor 'image'; send {\"text\": \"...\"} and/or {\"image\": \"<base64 PNG/JPEG>\"}");
  e = refused(R"({"inputs": [{"text": "a", "image": "QUJD"}, {"text": "b"}]})");
  EXPECT_EQ(e.code, "inconsistent_inputs");
  EXPECT_EQ(e.message, "inputs[1] has no 'image' but inputs[0] has one; every input of a request carries the same fields");
  e = refused(R"({"inputs": [{"image": "QUJD"}, {"image": "QUJD", "text": "b"}]})");
  EXPECT_EQ(e.message, "inputs[1] has 'text' but inputs[0] has none; every input of a request carries the same fields");
  e = refused(R"({"inputs": [{"text": 3}]})");
  EXPECT_EQ(e.message, "inputs[0].text must be a string, got number");
  e = refused(R"({"inputs": [{"image": 3}]})");
  EXPECT_EQ(e.message, "inputs[0].image must be a string of base64 PNG/JPEG bytes, got number");
  e = refused(R"({"inputs": [{"image": "QUJD"}, {"image": "QU*D"}]})");
  EXPECT_EQ(e.code, "invalid_base64");
  EXPECT_EQ(e.message, "inputs[1].image is not base64 at character 2; send the PNG/JPEG file's bytes in standard base64 "
                       "(A-Z a-z 0-9 + /, '=' padding, no line breaks)");
  e = refused(R"({"inputs": [{"image": "QUJDR"}]})");
  EXPECT_EQ(e.code, "invalid_base64");
  e = refused(R"({"inputs": [{"image": ""}]})");
  EXPECT_EQ(e.code, "invalid_image");
  EXPECT_EQ(e.message, "inputs[0].image is empty; send a PNG or JPEG file");
  e = refused(R"({"inputs": [{"image": "QUJDREVGR0g="}]})", small);
  EXPECT_EQ(e.status, 413);
  EXPECT_EQ(e.code, "image_too_large");
  EXPECT_EQ(e.message, "inputs[0].image holds more than 4 bytes; the limit is 4 per image (resize it, or raise "
                       "--max-image-bytes)");
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
