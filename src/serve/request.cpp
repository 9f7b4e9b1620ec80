#include "kiln/serve/request.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "base64.h"
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

bool take_text(const nlohmann::json& t, const std::string& where, const RequestLimits& limits,
               std::vector<std::string>& out, RequestError& error) {
  if (!t.is_string()) return fail(error, 400, "wrong_type", where + " must be a string, got " + type_name(t));
  const auto& s = t.get_ref<const std::string&>();
  if (s.size() > limits.max_text_bytes) {
    return fail(error, 413, "text_too_long",
                where + " is " + std::to_string(s.size()) + " bytes; the limit is " + std::to_string(limits.max_text_bytes));
  }
  out.push_back(s);
  return true;
}

// {"inputs": [{"text": ..., "image": ...}, ...]}: every input carries the keys of inputs[0].
bool parse_inputs(const nlohmann::json& inputs, const RequestLimits& limits, PredictRequest& out, RequestError& error) {
  if (!inputs.is_array()) {
    return fail(error, 400, "wrong_type",
                "field 'inputs' must be a list of objects {\"text\": ..., \"image\": ...}, got " + type_name(inputs));
  }
  if (inputs.empty()) return fail(error, 400, "empty_inputs", "field 'inputs' is an empty list; send at least one input");
  if (inputs.size() > limits.max_texts) {
    return fail(error, 413, "too_many_texts",
                "request has " + std::to_string(inputs.size()) + " inputs; the limit is " +
                    std::to_string(limits.max_texts) + " per request (split it)");
  }
  bool with_text = false, with_image = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string where = "inputs[" + std::to_string(i) + "]";
    const auto& item = inputs[i];
    if (!item.is_object()) {
      return fail(error, 400, "wrong_type",
                  where + " must be an object {\"text\": ..., \"image\": ...}, got " + type_name(item));
    }
    for (const auto& kv : item.items()) {
      if (kv.key() != "text" && kv.key() != "image") {
        return fail(error, 400, "unknown_field",
                    where + " has an unknown field '" + kv.key() + "'; an input has 'text' and/or 'image'");
      }
    }
    const bool has_text = item.contains("text"), has_image = item.contains("image");
    if (!has_text && !has_image) {
      return fail(error, 400, "empty_input",
                  where + " has neither 'text' nor 'image'; send {\"text\": \"...\"} and/or {\"image\": \"<base64 PNG/JPEG>\"}");
    }
    if (i == 0) {
      with_text = has_text;
      with_image = has_image;
    } else if (has_text != with_text || has_image != with_image) {
      const std::string key = has_text != with_text ? "text" : "image";
      const bool here = key == "text" ? has_text : has_image;
      return fail(error, 400, "inconsistent_inputs",
                  where + (here ? " has '" : " has no '") + key + "' but inputs[0] " + (here ? "has none" : "has one") +
                      "; every input of a request carries the same fields");
    }
    if (has_text && !take_text(item.at("text"), where + ".text", limits, out.texts, error)) return false;
    if (has_image) {
      const auto& im = item.at("image");
      if (!im.is_string()) {
        return fail(error, 400, "wrong_type",
                    where + ".image must be a string of base64 PNG/JPEG bytes, got " + type_name(im));
      }
      std::string bytes;
      std::size_t bad_at = 0;
      bool too_large = false;
      if (!decode_base64(im.get_ref<const std::string&>(), limits.max_image_bytes, bytes, bad_at, too_large)) {
        if (too_large) {
          return fail(error, 413, "image_too_large",
                      where + ".image holds more than " + std::to_string(limits.max_image_bytes) +
                          " bytes; the limit is " + std::to_string(limits.max_image_bytes) +
                          " per image (resize it, or raise --max-image-bytes)");
        }
        return fail(error, 400, "invalid_base64",
                    where + ".image is not base64 at character " + std::to_string(bad_at) +
                        "; send the PNG/JPEG file's bytes in standard base64 (A-Z a-z 0-9 + /, '=' padding, no line "
                        "breaks)");
      }
      if (bytes.empty()) return fail(error, 400, "invalid_image", where + ".image is empty; send a PNG or JPEG file");
      out.images.push_back(std::move(bytes));
    }
  }
  return true;
}

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
    if (item.key() != "texts" && item.key() != "inputs" && item.key() != "top_k") {
      return fail(error, 400, "unknown_field",
                  "unknown field '" + item.key() + "'; a predict request has 'texts' (or 'inputs') and optionally 'top_k'");
    }
  }
  if (j.contains("texts") && j.contains("inputs")) {
    return fail(error, 400, "conflicting_fields",
                "the request has both 'texts' and 'inputs'; send one: {\"texts\": [...]} or "
                "{\"inputs\": [{\"text\": ..., \"image\": ...}]}");
  }
  if (j.contains("inputs")) {
    if (!parse_inputs(j.at("inputs"), limits, out, error)) {
      out.texts.clear();
      out.images.clear();
      return false;
    }
  } else if (!j.contains("texts")) {
    return fail(error, 400, "missing_field",
                "field 'texts' is missing; send {\"texts\": [\"...\"]} or {\"inputs\": [{\"text\": \"...\"}]}");
  } else {
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
      if (!take_text(texts[i], "texts[" + std::to_string(i) + "]", limits, out.texts, error)) {
        out.texts.clear();
        return false;
      }
    }
  }
  if (j.contains("top_k")) {
    const auto& k = j.at("top_k");
    const bool integral = k.is_number_integer() || k.is_number_unsigned();
    const long long v = integral ? k.get<long long>() : 0;
    if (!integral || v < 1 || static_cast<unsigned long long>(v) > limits.max_top_k) {
      out.texts.clear();
      out.images.clear();
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
