#include "v2_protocol.h"

#include <cstdio>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base64.h"
#include "json_body.h"
#include "kiln/core/version.h"

namespace kiln::serve::v2 {

namespace {

bool fail(RequestError& error, int status, const char* code, std::string message) {
  error.status = status;
  error.code = code;
  error.message = std::move(message);
  return false;
}

// What one BYTES input may hold: its name in messages, the largest element and the error code for
// a larger one.
struct BytesInput {
  std::string name;
  std::size_t max_element_bytes;
  const char* too_long_code;
};

BytesInput text_input(const RequestLimits& limits) { return {kInputName, limits.max_text_bytes, "text_too_long"}; }
// JSON elements of `image` are base64 text: 4 characters per 3 bytes (the decoded size is checked after).
BytesInput image_input(const RequestLimits& limits, bool base64) {
  return {kImageInputName, base64 ? (limits.max_image_bytes + 2) / 3 * 4 + 64 : limits.max_image_bytes, "image_too_large"};
}

// Appends the strings of a (possibly nested, row-major) BYTES data array; false at the first
// element that is not a string, with its index path in `where`.
bool flatten(const nlohmann::json& j, std::vector<std::string>& out, std::string& where, const RequestLimits& limits,
             RequestError& error, const std::string& path, const BytesInput& in) {
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    const std::string p = path + "[" + std::to_string(i) + "]";
    if (e.is_array()) {
      if (!flatten(e, out, where, limits, error, p, in)) return false;
      continue;
    }
    if (!e.is_string()) {
      where = p;
      return fail(error, 400, "wrong_type",
                  "inputs[" + in.name + "].data" + p + " must be a string (BYTES elements are JSON strings), got " +
                      std::string(e.type_name()));
    }
    const auto& s = e.get_ref<const std::string&>();
    if (s.size() > in.max_element_bytes) {
      return fail(error, 413, in.too_long_code,
                  "inputs[" + in.name + "].data" + p + " is " + std::to_string(s.size()) + " bytes; the limit is " +
                      std::to_string(in.max_element_bytes));
    }
    if (out.size() >= limits.max_texts) {
      return fail(error, 413, "too_many_texts",
                  "input '" + in.name + "' has more than " + std::to_string(limits.max_texts) + " elements; the limit is " +
                      std::to_string(limits.max_texts) + " per request (split it)");
    }
    out.push_back(s);
  }
  return true;
}

// A BYTES tensor in the binary extension's layout: per element a 4-byte little-endian length, then
// that many bytes.
bool decode_bytes_tensor(std::string_view bytes, std::vector<std::string>& out, const RequestLimits& limits,
                         RequestError& error, const BytesInput& in) {
  while (!bytes.empty()) {
    if (bytes.size() < 4) {
      return fail(error, 400, "invalid_request", "binary input '" + in.name + "' ends inside an element's 4-byte length");
    }
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = std::size_t{b[0]} | std::size_t{b[1]} << 8 | std::size_t{b[2]} << 16 | std::size_t{b[3]} << 24;
    bytes.remove_prefix(4);
    if (n > bytes.size()) {
      return fail(error, 400, "invalid_request",
                  "binary input '" + in.name + "' element " + std::to_string(out.size()) + " claims " + std::to_string(n) +
                      " bytes but " + std::to_string(bytes.size()) + " remain");
    }
    if (n > in.max_element_bytes) {
      return fail(error, 413, in.too_long_code,
                  "input '" + in.name + "' element " + std::to_string(out.size()) + " is " + std::to_string(n) +
                      " bytes; the limit is " + std::to_string(in.max_element_bytes));
    }
    if (out.size() >= limits.max_texts) {
      return fail(error, 413, "too_many_texts",
                  "input '" + in.name + "' has more than " + std::to_string(limits.max_texts) + " elements (split it)");
    }
    out.emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return true;
}

// Base64-decodes the JSON elements of input `image` in place.
bool decode_images(std::vector<std::string>& images, const RequestLimits& limits, RequestError& error) {
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::string bytes;
    std::size_t bad_at = 0;
    bool too_large = false;
    if (!decode_base64(images[i], limits.max_image_bytes, bytes, bad_at, too_large)) {
      if (too_large) {
        return fail(error, 413, "image_too_large",
                    "inputs[image].data[" + std::to_string(i) + "] holds more than " +
                        std::to_string(limits.max_image_bytes) + " bytes; the limit is " +
                        std::to_string(limits.max_image_bytes) + " per image");
      }
      return fail(error, 400, "invalid_base64",
                  "inputs[image].data[" + std::to_string(i) + "] is not base64 at character " + std::to_string(bad_at) +
                      "; JSON data of input 'image' holds each PNG/JPEG file in standard base64 (or send binary data)");
    }
    images[i] = std::move(bytes);
  }
  return true;
}

void append_float(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.9g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

bool parse_infer_request(const std::string& body, const RequestLimits& limits, InferRequest& out, RequestError& error,
                         std::optional<std::size_t> json_bytes) {
  out = InferRequest{};
  const std::string hint = "send {\"inputs\": [{\"name\": \"text\", \"shape\": [n], \"datatype\": \"BYTES\", \"data\": [...]}]}";
  if (body.size() > limits.max_body_bytes) {
    return fail(error, 413, "body_too_large",
                "request body is " + std::to_string(body.size()) + " bytes; the limit is " +
                    std::to_string(limits.max_body_bytes) + " (split the texts over several requests)");
  }
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return fail(error, 400, "empty_body", "request body is empty; " + hint);
  }
  if (json_nesting_depth(body, limits.max_nesting) > limits.max_nesting) {
    return fail(error, 400, "nesting_too_deep",
                "JSON nests arrays/objects deeper than " + std::to_string(limits.max_nesting) + " levels; " + hint);
  }
  // The binary tensor data extension: the JSON part is the first Inference-Header-Content-Length
  // bytes; binary tensors follow it, in the order of the inputs that declare binary_data_size.
  std::string_view binary;
  if (json_bytes) {
    if (*json_bytes > body.size()) {
      return fail(error, 400, "invalid_request",
                  "Inference-Header-Content-Length is " + std::to_string(*json_bytes) + " but the body has only " +
                      std::to_string(body.size()) + " bytes");
    }
    binary = std::string_view(body).substr(*json_bytes);
  }
  nlohmann::json j;
  if (!parse_json_body(json_bytes ? body.substr(0, *json_bytes) : body, j, error, hint)) return false;
  if (!j.is_object()) return fail(error, 400, "invalid_request", "the inference request must be a JSON object; " + hint);
  if (j.contains("id")) {
    if (!j["id"].is_string()) return fail(error, 400, "wrong_type", "field 'id' must be a string");
    out.id = j["id"].get<std::string>();
    out.has_id = true;
  }
  if (j.contains("parameters") && !j["parameters"].is_object()) {
    return fail(error, 400, "wrong_type", "field 'parameters' must be an object");
  }
  if (!j.contains("inputs")) return fail(error, 400, "missing_field", "field 'inputs' is missing; " + hint);
  const auto& inputs = j["inputs"];
  if (!inputs.is_array() || inputs.empty()) {
    return fail(error, 400, "wrong_type", "field 'inputs' must be a non-empty list of tensors; " + hint);
  }
  bool seen_text = false, seen_image = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& t = inputs[i];
    const std::string at = "inputs[" + std::to_string(i) + "]";
    if (!t.is_object()) return fail(error, 400, "wrong_type", at + " must be an object {name, shape, datatype, data}");
    for (const char* key : {"name", "shape", "datatype"}) {
      if (!t.contains(key)) return fail(error, 400, "missing_field", at + " has no '" + key + "'; " + hint);
    }
    if (!t["name"].is_string()) return fail(error, 400, "wrong_type", at + ".name must be a string");
    const std::string name = t["name"].get<std::string>();
    if (name != kInputName && name != kImageInputName) {
      return fail(error, 400, "unknown_input",
                  "unexpected inference input '" + name + "'; the inputs are 'text' (BYTES) and, for a model that reads "
                  "images, 'image' (BYTES: PNG/JPEG files, base64 in JSON data)");
    }
    const bool is_image = name == kImageInputName;
    bool& seen = is_image ? seen_image : seen_text;
    if (seen) return fail(error, 400, "invalid_request", "input '" + name + "' is given twice");
    seen = true;
    if (!t["datatype"].is_string() || t["datatype"].get<std::string>() != "BYTES") {
      return fail(error, 400, "wrong_type",
                  "input '" + name + "' must have datatype BYTES (" +
                      (is_image ? "PNG/JPEG files" : "UTF-8 strings") + "), got " + t["datatype"].dump());
    }
    std::vector<std::string>& elements_out = is_image ? out.images : out.texts;
    std::optional<std::size_t> binary_size;
    if (t.contains("parameters")) {
      const auto& p = t["parameters"];
      if (!p.is_object()) return fail(error, 400, "wrong_type", at + ".parameters must be an object");
      if (p.contains("binary_data_size")) {
        if (!p["binary_data_size"].is_number_unsigned() && !p["binary_data_size"].is_number_integer()) {
          return fail(error, 400, "wrong_type", at + ".parameters.binary_data_size must be a byte count");
        }
        const int64_t n = p["binary_data_size"].get<int64_t>();
        if (n < 0) return fail(error, 400, "wrong_type", at + ".parameters.binary_data_size must be >= 0");
        binary_size = static_cast<std::size_t>(n);
      }
    }
    if (binary_size && !json_bytes) {
      return fail(error, 400, "invalid_request",
                  "input '" + name + "' has binary_data_size but the request has no Inference-Header-Content-Length header");
    }
    if (binary_size && t.contains("data")) {
      return fail(error, 400, "invalid_request", "input '" + name + "' has both 'data' and binary_data_size; send one");
    }
    if (!binary_size && !t.contains("data")) {
      return fail(error, 400, "missing_field", at + " has no 'data'; " + hint);
    }
    const auto& shape = t["shape"];
    if (!shape.is_array() || shape.empty()) {
      return fail(error, 400, "wrong_type", "input '" + name + "' shape must be a list of dimensions, e.g. [2]");
    }
    uint64_t elements = 1;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return fail(error, 400, "invalid_shape", "input '" + name + "' shape " + shape.dump() + " must hold integers >= 0");
      }
      elements *= static_cast<uint64_t>(d.get<int64_t>());
      if (elements > (uint64_t{1} << 40)) break;
    }
    if (binary_size) {
      if (*binary_size > binary.size()) {
        return fail(error, 400, "invalid_request",
                    "input '" + name + "' declares " + std::to_string(*binary_size) + " bytes of binary data but " +
                        std::to_string(binary.size()) + " follow the JSON header");
      }
      const BytesInput in = is_image ? image_input(limits, false) : text_input(limits);
      if (!decode_bytes_tensor(binary.substr(0, *binary_size), elements_out, limits, error, in)) return false;
      binary.remove_prefix(*binary_size);
    } else {
      const auto& data = t["data"];
      if (!data.is_array()) return fail(error, 400, "wrong_type", "input '" + name + "' data must be a list of strings");
      std::string where;
      const BytesInput in = is_image ? image_input(limits, true) : text_input(limits);
      if (!flatten(data, elements_out, where, limits, error, "", in)) return false;
      if (is_image && !decode_images(elements_out, limits, error)) return false;
    }
    if (elements != elements_out.size()) {
      return fail(error, 400, "invalid_shape",
                  "input '" + name + "' has shape " + shape.dump() + " (" + std::to_string(elements) + " elements) but " +
                      std::to_string(elements_out.size()) + " elements in 'data'; make them agree");
    }
    if (shape.size() > 2 || (shape.size() == 2 && shape[1].get<int64_t>() != 1)) {
      return fail(error, 400, "invalid_shape",
                  "input '" + name + "' shape must be [n] or [n, 1] (one element per input), got " + shape.dump());
    }
    if (elements_out.empty()) return fail(error, 400, "empty_texts", "input '" + name + "' has no elements; send at least one");
  }
  if (seen_text && seen_image && out.texts.size() != out.images.size()) {
    return fail(error, 400, "invalid_shape",
                "input 'image' has " + std::to_string(out.images.size()) + " elements but input 'text' has " +
                    std::to_string(out.texts.size()) + "; send one image per text");
  }
  if (j.contains("outputs")) {
    const auto& outputs = j["outputs"];
    if (!outputs.is_array()) return fail(error, 400, "wrong_type", "field 'outputs' must be a list of {\"name\": ...}");
    if (!outputs.empty()) out.want_probabilities = out.want_label = false;
    for (const auto& o : outputs) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
        return fail(error, 400, "wrong_type", "each of 'outputs' must be an object with a string 'name'");
      }
      const std::string name = o["name"].get<std::string>();
      if (name == kProbabilitiesName) {
        out.want_probabilities = true;
      } else if (name == kLabelName) {
        out.want_label = true;
      } else {
        return fail(error, 400, "unknown_output",
                    "unexpected inference output '" + name + "' for this model; its outputs are 'probabilities' and 'label'");
      }
      // An output asked for as binary ("binary_data": true) is answered as JSON data, which the
      // protocol's clients read as well.
    }
  }
  return true;
}

std::string infer_response(const std::string& model_name, const std::string& model_version, const InferRequest& request,
                           const std::vector<float>& probabilities, const std::vector<std::string>& labels) {
  const std::size_t classes = labels.size();
  const std::size_t n = classes ? probabilities.size() / classes : 0;
  std::string body;
  body.reserve(128 + n * (classes * 12 + 24));
  body += "{\"model_name\":";
  body += nlohmann::json(model_name).dump();
  body += ",\"model_version\":";
  body += nlohmann::json(model_version).dump();
  if (request.has_id) {
    body += ",\"id\":";
    body += nlohmann::json(request.id).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  body += ",\"outputs\":[";
  bool first = true;
  if (request.want_probabilities) {
    body += "{\"name\":\"probabilities\",\"datatype\":\"FP32\",\"shape\":[";
    body += std::to_string(n) + "," + std::to_string(classes) + "],\"data\":[";
    for (std::size_t i = 0; i < probabilities.size(); ++i) {
      if (i) body += ',';
      append_float(body, probabilities[i]);
    }
    body += "]}";
    first = false;
  }
  if (request.want_label) {
    if (!first) body += ',';
    body += "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[" + std::to_string(n) + "],\"data\":[";
    for (std::size_t i = 0; i < n; ++i) {
      const float* p = probabilities.data() + i * classes;
      std::size_t best = 0;
      for (std::size_t c = 1; c < classes; ++c) {
        if (p[c] > p[best]) best = c;
      }
      if (i) body += ',';
      body += nlohmann::json(labels[best]).dump();
    }
    body += "]}";
  }
  body += "]}";
  return body;
}

std::string model_metadata(const std::string& model_name, const std::string& model_version, std::size_t classes,
                           bool reads_text, bool reads_images) {
  nlohmann::json inputs = nlohmann::json::array();
  if (reads_text) inputs.push_back({{"name", kInputName}, {"datatype", "BYTES"}, {"shape", {-1}}});
  if (reads_images) inputs.push_back({{"name", kImageInputName}, {"datatype", "BYTES"}, {"shape", {-1}}});
  const nlohmann::json j = {
      {"name", model_name},
      {"versions", {model_version}},
      {"platform", "kiln"},
      {"inputs", inputs},
      {"outputs",
       {{{"name", kProbabilitiesName}, {"datatype", "FP32"}, {"shape", {-1, static_cast<int64_t>(classes)}}},
        {{"name", kLabelName}, {"datatype", "BYTES"}, {"shape", {-1}}}}}};
  return j.dump();
}

std::string server_metadata() {
  return nlohmann::json{{"name", "kiln"}, {"version", kiln::version()}, {"extensions", nlohmann::json::array({"model_repository"})}}.dump();
}

std::string error_body(const std::string& message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kiln::serve::v2
