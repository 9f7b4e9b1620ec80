// The model server's request bodies: parsing and validating `POST /v1/predict` JSON, and the JSON
// error body every 4xx/5xx answer carries: {"error": {"code": "...", "message": "..."}}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::serve {

struct RequestLimits {
  std::size_t max_body_bytes = 8u << 20;   ///< whole request body
  std::size_t max_texts = 1024;            ///< texts per request
  std::size_t max_text_bytes = 1u << 20;   ///< one text, UTF-8 bytes
  std::size_t max_nesting = 16;            ///< JSON array/object depth
  std::size_t max_top_k = 100;             ///< top_k ceiling (the server also caps it at its label count)
  std::size_t max_image_bytes = 4u << 20;  ///< one image's encoded file (after base64), bytes
  std::int64_t max_image_pixels = 4'000'000;  ///< one image's width x height (checked before decoding)
};

struct PredictRequest {
  /// One per input when the request has texts ({"texts": [...]} or inputs with "text"), else empty.
  std::vector<std::string> texts;
  /// The PNG/JPEG bytes (base64-decoded) of each input's "image", one per input, or empty when the
  /// inputs carry no image. Not yet decoded into pixels (the served model checks them).
  std::vector<std::string> images;
  std::size_t top_k = 1;
  /// Inputs in the request (texts or images: the modalities present agree on it).
  [[nodiscard]] std::size_t size() const { return texts.empty() ? images.size() : texts.size(); }
};

/// A request the server refuses: HTTP status, a stable machine code and a message that says what was
/// wrong and how to fix it.
struct RequestError {
  int status = 400;
  std::string code;
  std::string message;
  /// Set on 5xx answers: the id the server's log line with the details carries.
  std::string request_id;
};

/// Parses `{"texts": ["...", ...], "top_k": k}` or `{"inputs": [{"text": "...", "image": "<base64
/// PNG/JPEG>"}, ...], "top_k": k}` (top_k optional, default 1; every input carries the same keys,
/// one or both). Inputs add 400 conflicting_fields (both texts and inputs), wrong_type / empty_inputs
/// / empty_input / unknown_field / inconsistent_inputs (naming inputs[i]), 400 invalid_base64 (the
/// offset) and 413 image_too_large (limits.max_image_bytes). Never throws for any
/// input: returns false and fills `error` for a body that is too large (413 body_too_large), empty
/// (400 empty_body), nested too deeply (400 nesting_too_deep), not JSON or not UTF-8 (400
/// invalid_json, with the byte offset), not an object (400 invalid_request), with an unknown field
/// (400 unknown_field), without texts (400 missing_field), with texts that are not a non-empty list
/// of strings (400 wrong_type / empty_texts), too many texts (413 too_many_texts), a text too long
/// (413 text_too_long), or a bad top_k (400 invalid_top_k).
[[nodiscard]] bool parse_predict_request(const std::string& body, const RequestLimits& limits, PredictRequest& out,
                                         RequestError& error);

/// `{"error": {"code": code, "message": message}}`, plus `"request_id"` inside "error" when set.
[[nodiscard]] std::string error_body(const RequestError& error);

/// The deepest array/object nesting in `body`, scanning no further than depth `stop_at` + 1 (brackets
/// inside strings do not count). Works on any bytes, valid JSON or not.
[[nodiscard]] std::size_t json_nesting_depth(const std::string& body, std::size_t stop_at);

}  // namespace kiln::serve
