// What every explanation method returns: per example, the class explained, the model's output for
// it, the base value and one attribution per feature, so that base_value + Σ value = output
// (exactly for linear SHAP, Kernel SHAP and Owen values; up to `delta` for integrated gradients).
// Persisted as JSON lines by `kiln explain --json` and returned by POST /v1/explain: keep the field
// names (docs/explain.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::explain {

/// Methods, persisted by name in JSON output and importance.json: never rename.
enum class Method { kLinear, kKernel, kPartition, kIntegratedGradients };
[[nodiscard]] std::string method_name(Method m);  ///< "linear", "kernel", "partition", "ig"

/// One feature's share of output − base_value. `spans` are [start, end) offsets in Unicode code
/// points into the original text (Python's text[start:end]): every occurrence of the feature. Empty
/// for features without a place in the text (the "(absent features)" entry, images).
struct Attribution {
  std::string feature;
  double value = 0;
  std::vector<std::pair<int64_t, int64_t>> spans;
};

/// Name of the entry that sums the attributions of features absent from the text (linear SHAP).
inline constexpr const char* kAbsentFeatures = "(absent features)";

struct Explanation {
  int64_t class_id = 0;   ///< the class explained (the predicted one)
  std::string label;      ///< its label
  double output = 0;      ///< f(x) for that class in `space`
  double base_value = 0;  ///< E[f] over the background (SHAP) or f(baseline) (IG)
  std::string space = "logit";  ///< "logit" (before calibration) or "probability"
  Method method = Method::kLinear;
  /// In the method's order (features by column for linear, words in text order otherwise).
  std::vector<Attribution> attributions;
  /// Integrated gradients only: |f(x) − f(baseline) − Σ value|, the completeness gap.
  std::optional<double> delta;

  /// |base_value + Σ value − output|: 0 up to rounding for the Shapley methods.
  [[nodiscard]] double additivity_error() const;
};

/// The JSON-lines object: {"label", "output", "base_value", "space", "method", "attributions":
/// [{"feature", "value", "start", "end", "spans"}]} (+ "delta" for IG). start/end are the first
/// span (null without one); "spans" lists every span when there are several.
[[nodiscard]] nlohmann::json to_json(const Explanation& e);

/// Byte offset → code-point offset into `text` (valid UTF-8; `byte` <= text.size()).
[[nodiscard]] int64_t code_point_offset(const std::string& text, std::size_t byte);

}  // namespace kiln::explain
