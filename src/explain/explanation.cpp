#include "kiln/explain/explanation.h"

#include <cmath>

namespace kiln::explain {

std::string method_name(Method m) {
  switch (m) {
    case Method::kLinear: return "linear";
    case Method::kKernel: return "kernel";
    case Method::kPartition: return "partition";
    case Method::kIntegratedGradients: return "ig";
  }
  return "linear";
}

double Explanation::additivity_error() const {
  double sum = base_value;
  for (const auto& a : attributions) sum += a.value;
  return std::abs(sum - output);
}

nlohmann::json to_json(const Explanation& e) {
  nlohmann::json attributions = nlohmann::json::array();
  for (const auto& a : e.attributions) {
    nlohmann::json j = {{"feature", a.feature}, {"value", a.value}};
    if (a.spans.empty()) {
      j["start"] = nullptr;
      j["end"] = nullptr;
    } else {
      j["start"] = a.spans.front().first;
      j["end"] = a.spans.front().second;
    }
    if (a.spans.size() > 1) {
      nlohmann::json spans = nlohmann::json::array();
      for (const auto& [s, t] : a.spans) spans.push_back({s, t});
      j["spans"] = spans;
    }
    attributions.push_back(std::move(j));
  }
  nlohmann::json out = {{"label", e.label},       {"output", e.output}, {"base_value", e.base_value},
                        {"space", e.space},       {"method", method_name(e.method)},
                        {"attributions", attributions}};
  if (e.delta) out["delta"] = *e.delta;
  return out;
}

int64_t code_point_offset(const std::string& text, std::size_t byte) {
  int64_t n = 0;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    n += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
  }
  return n;
}

}  // namespace kiln::explain
