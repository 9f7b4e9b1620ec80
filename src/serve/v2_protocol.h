// The Open Inference Protocol (KServe v2, Triton's HTTP/REST API) for a text classifier: the
// inference request with a BYTES input tensor `text`, the response with `probabilities` (FP32
// [n, classes]) and `label` (BYTES [n]), model metadata, and the protocol's error body
// {"error": "message"}. JSON in and out only; the server routes and answers.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "kiln/serve/request.h"

namespace kiln::serve::v2 {

inline constexpr const char* kInputName = "text";
/// A model that reads images also takes `image` (BYTES: PNG/JPEG files; base64 strings in JSON
/// data, raw bytes with the binary tensor data extension), one element per text.
inline constexpr const char* kImageInputName = "image";
inline constexpr const char* kProbabilitiesName = "probabilities";
inline constexpr const char* kLabelName = "label";

struct InferRequest {
  /// The request's "id", echoed in the response when present.
  std::string id;
  bool has_id = false;
  /// The `text` tensor's elements in row-major order (empty when the request has no `text`).
  std::vector<std::string> texts;
  /// The `image` tensor's elements (PNG/JPEG bytes, base64-decoded), or empty.
  std::vector<std::string> images;
  /// Outputs asked for (both when the request names none).
  bool want_probabilities = true;
  bool want_label = true;
};

/// Parses an inference request body. `json_bytes`: the Inference-Header-Content-Length header of the
/// binary tensor data extension (the JSON is that many leading bytes; inputs with
/// parameters.binary_data_size take their elements, each a 4-byte little-endian length and the
/// bytes, from what follows). Never throws: returns false and fills `error` (status 400 or 413, a
/// stable code for metrics, a message naming the field and the fix) for anything the protocol or
/// this model cannot take: not JSON, no `inputs`, an input other than `text`, a datatype other than
/// BYTES, a shape that does not match the data, elements that are not strings, binary data that
/// does not add up, too many or too long texts, unknown outputs. Outputs asked for as binary are
/// answered as JSON data.
[[nodiscard]] bool parse_infer_request(const std::string& body, const RequestLimits& limits, InferRequest& out,
                                       RequestError& error, std::optional<std::size_t> json_bytes = std::nullopt);

/// The inference response for `request`: `probabilities` row-major [n, labels.size()].
[[nodiscard]] std::string infer_response(const std::string& model_name, const std::string& model_version,
                                         const InferRequest& request, const std::vector<float>& probabilities,
                                         const std::vector<std::string>& labels);

/// GET /v2/models/{name}: name, versions, platform, inputs and outputs with datatypes and shapes
/// (-1 = any batch size). Inputs: `text` when `reads_text`, `image` when `reads_images`.
[[nodiscard]] std::string model_metadata(const std::string& model_name, const std::string& model_version,
                                         std::size_t classes, bool reads_text = true, bool reads_images = false);

/// GET /v2: the server's name, version and protocol extensions.
[[nodiscard]] std::string server_metadata();

/// {"error": message}
[[nodiscard]] std::string error_body(const std::string& message);

}  // namespace kiln::serve::v2
