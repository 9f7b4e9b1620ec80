#include "kiln/serve/request.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "json_body.h"

namespace kiln::serve {

std::size_t json_nesting_depth(const std::string& body, std::size_t stop_at) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > stop_at) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

namespace {

bool fail(RequestError& error, int status, const char* code, std::string message) {
  error.status = status;
  error.code = code;
  error.message = std::move(message);
  return false;
}

std::string type_name(const nlohmann::json& j) { return j.type_name(); }

}  // namespace

bool parse_predict_request(const std::string& body, const RequestLimits& limits, PredictRequest& out,
                           RequestError& error) {
  out = PredictRequest{};
  if (body.size() > limits.max_body_bytes) {
    return fail(error, 413, "body_too_large",
                "request body is " + std::to_string(body.size()) + " bytes; the limit is " +
                    std::to_string(limits.max_body_bytes) + " (split the texts over several requests)");
  }
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return fail(error, 400, "empty_body", "request body is empty; send {\"texts\": [\"...\"]}");
  }
  if (json_nesting_depth(body, limits.max_nesting) > limits.max_nesting) {
    return fail(error, 400, "nesting_too_deep",
                "JSON nests arrays/objects deeper than " + std::to_string(limits.max_nesting) +
                    " levels; a predict request is {\"texts\": [\"...\"], \"top_k\": k}");
  }
  nlohmann::json j;
  if (!parse_json_body(body, j, error, "send {\"texts\": [\"...\"]}")) return false;
  if (!j.is_object()) {
    return fail(error, 400, "invalid_request",
                "request body must be a JSON object {\"texts\": [...]}, got " + type_name(j));
  }
  for (const auto& item : j.items()) {
    if (item.key() != "texts" && item.key() != "top_k") {
      return fail(error, 400, "unknown_field",
                  "unknown field '" + item.key() + "'; a predict request has 'texts' and optionally 'top_k'");
    }
  }
  if (!j.contains("texts")) {
    return fail(error, 400, "missing_field", "field 'texts' is missing; send {\"texts\": [\"...\"]}");
  }
  const auto& texts = j.at("texts");
  if (!texts.is_array()) {
    return fail(error, 400, "wrong_type", "field 'texts' must be a list of strings, got " + type_name(texts));
  }
  if (texts.empty()) return fail(error, 400, "empty_texts", "field 'texts' is an empty list; send at least one text");
  if (texts.size() > limits.max_texts) {
    return fail(error, 413, "too_many_texts",
                "request has " + std::to_string(texts.size()) + " texts; the limit is " +
                    std::to_string(limits.max_texts) + " per request (split it)");
  }
  out.texts.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto& t = texts[i];
    if (!t.is_string()) {
      out.texts.clear();
      return fail(error, 400, "wrong_type",
                  "texts[" + std::to_string(i) + "] must be a string, got " + type_name(t));
    }
    const auto& s = t.get_ref<const std::string&>();
    if (s.size() > limits.max_text_bytes) {
      out.texts.clear();
      return fail(error, 413, "text_too_long",
                  "texts[" + std::to_string(i) + "] is " + std::to_string(s.size()) + " bytes; the limit is " +
                      std::to_string(limits.max_text_bytes));
    }
    out.texts.push_back(s);
  }
  if (j.contains("top_k")) {
    const auto& k = j.at("top_k");
    const bool integral = k.is_number_integer() || k.is_number_unsigned();
    const long long v = integral ? k.get<long long>() : 0;
    if (!integral || v < 1 || static_cast<unsigned long long>(v) > limits.max_top_k) {
      out.texts.clear();
      return fail(error, 400, "invalid_top_k",
                  "field 'top_k' must be an integer from 1 to " + std::to_string(limits.max_top_k) + ", got " +
                      k.dump());
    }
    out.top_k = static_cast<std::size_t>(v);
  }
  return true;
}

std::string error_body(const RequestError& error) {
  nlohmann::json e = {{"code", error.code}, {"message", error.message}};
  if (!error.request_id.empty()) e["request_id"] = error.request_id;
  return nlohmann::json{{"error", std::move(e)}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool parse_json_body(const std::string& body, nlohmann::json& out, RequestError& error, const std::string& hint) {
  // Our own words only: the library's messages name its internals ("[json.exception.out_of_range.406]").
  try {
    out = nlohmann::json::parse(body);
    return true;
  } catch (const nlohmann::json::parse_error& e) {
    const std::string what = e.what();
    std::string reason;
    const std::size_t at = e.byte == 0 ? 0 : e.byte - 1;
    if (what.find("UTF-8") != std::string::npos) {
      reason = "a string holds bytes that are not UTF-8";
    } else if (what.find("control character") != std::string::npos) {
      reason = "a string holds an unescaped control character (write \\n, \\t, \\u0000...)";
    } else if (what.find("escape") != std::string::npos || what.find("surrogate") != std::string::npos) {
      reason = "a string holds an invalid escape sequence";
    } else if (at >= body.size() || what.find("end of input") != std::string::npos) {
      reason = "the body ends before the JSON value does";
    } else {
      const unsigned char c = static_cast<unsigned char>(body[at]);
      char buf[48];
      if (c >= 0x21 && c < 0x7f) {
        std::snprintf(buf, sizeof(buf), "unexpected character '%c'", c);
      } else {
        std::snprintf(buf, sizeof(buf), "unexpected byte 0x%02x", c);
      }
      reason = buf;
    }
    return fail(error, 400, "invalid_json",
                "request body is not valid UTF-8 JSON at byte " + std::to_string(e.byte) + ": " + reason + "; " + hint);
  } catch (const nlohmann::json::out_of_range&) {
    return fail(error, 400, "invalid_json",
                "request body holds a number outside the range of a 64-bit float (e.g. 1e400); " + hint);
  } catch (const std::exception&) {
    return fail(error, 400, "invalid_json", "request body is not usable JSON; " + hint);
  }
}

}  // namespace kiln::serve
