#include "predict_response.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace kiln::serve {

namespace {

void append_float(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.6g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

std::string predict_response(const std::vector<std::string>& labels, const std::string& model_version,
                             const std::vector<float>& probabilities, std::size_t n, std::size_t k) {
  std::vector<std::string> labels_json;
  labels_json.reserve(labels.size());
  for (const auto& l : labels) labels_json.push_back(nlohmann::json(l).dump());
  return predict_response_json(labels_json, nlohmann::json(model_version).dump(), probabilities, n, k);
}

std::string predict_response_json(const std::vector<std::string>& labels_json, const std::string& version_json,
                                  const std::vector<float>& probabilities, std::size_t n, std::size_t k) {
  const std::size_t classes = labels_json.size();
  std::string body;
  body.reserve(64 + version_json.size() + n * (48 + k * 40));
  body += "{\"predictions\":[";
  std::vector<std::size_t> order(classes);
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = probabilities.data() + i * classes;
    for (std::size_t c = 0; c < classes; ++c) order[c] = c;
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](std::size_t a, std::size_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
    if (i) body += ',';
    body += "{\"label\":";
    body += labels_json[order[0]];
    body += ",\"probability\":";
    append_float(body, p[order[0]]);
    body += ",\"top_k\":[";
    for (std::size_t j = 0; j < k; ++j) {
      if (j) body += ',';
      body += "{\"label\":";
      body += labels_json[order[j]];
      body += ",\"probability\":";
      append_float(body, p[order[j]]);
      body += '}';
    }
    body += "]}";
  }
  body += "],\"model_version\":";
  body += version_json;
  body += '}';
  return body;
}

}  // namespace kiln::serve
