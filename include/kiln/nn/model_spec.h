// A model described by data: a family name (the registry key) and that family's parameters.
// Persisted in kiln.json as {"family": ..., "params": {...}}: never rename a family or a parameter.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace kiln::nn {

struct ModelSpec {
  /// Registry key: "linear", "mlp", "embedbag", ...
  std::string family = "mlp";
  /// Family parameters; missing ones take the family's documented defaults.
  nlohmann::json params = nlohmann::json::object();
};

[[nodiscard]] nlohmann::json to_json(const ModelSpec& spec);
/// Throws ConfigError naming the field when `j` is not {"family": string, "params": object}. A missing
/// key keeps the ModelSpec default; any other key is an error. Parameters are not checked here
/// (resolve_spec / make_model check them against the family).
[[nodiscard]] ModelSpec model_spec_from_json(const nlohmann::json& j);

}  // namespace kiln::nn
