// Reading and validating a model family's `params` object. Every error is a kiln::ConfigError whose
// message names the field as it appears in a config (`model.params.<key>`) and the offending value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::nn {

/// Throws ConfigError unless `params` is an object (or null) whose keys all appear in `defaults`;
/// the message lists the valid keys and suggests the closest one.
void check_known_keys(const std::string& family, const nlohmann::json& params, const nlohmann::json& defaults);

/// `defaults` overlaid with `params` (null params = none given).
[[nodiscard]] nlohmann::json merge_params(const nlohmann::json& defaults, const nlohmann::json& params);

/// Typed access to one family's params; a missing key takes its value from `defaults`.
class ParamReader {
 public:
  /// Runs check_known_keys first.
  ParamReader(std::string family, const nlohmann::json& params, const nlohmann::json& defaults);

  /// An integer >= `min` (an integral-valued float such as 128.0 is accepted).
  [[nodiscard]] int64_t integer(const std::string& key, int64_t min) const;
  /// A non-empty list of integers, each >= `min`.
  [[nodiscard]] std::vector<int64_t> integer_list(const std::string& key, int64_t min) const;
  /// A number in [0, 1).
  [[nodiscard]] double probability(const std::string& key) const;
  [[nodiscard]] bool boolean(const std::string& key) const;
  /// A finite number > 0.
  [[nodiscard]] double positive(const std::string& key) const;
  /// A finite number >= 0.
  [[nodiscard]] double non_negative(const std::string& key) const;
  /// True when the value is JSON null (a family's "derive this" default).
  [[nodiscard]] bool is_null(const std::string& key) const { return value(key).is_null(); }
  /// A string equal to one of `choices`.
  [[nodiscard]] std::string choice(const std::string& key, const std::vector<std::string>& choices) const;

 private:
  [[nodiscard]] const nlohmann::json& value(const std::string& key) const;

  std::string family_;
  nlohmann::json merged_;
};

/// "model.params.<key>": how fields are named in messages.
[[nodiscard]] std::string param_field(const std::string& key);

/// Comma-separated names, each quoted when `quote` is set: `"relu", "gelu"`.
[[nodiscard]] std::string join_names(const std::vector<std::string>& names, bool quote);

/// The entry of `candidates` closest to `name` by edit distance, or "" when none is close.
[[nodiscard]] std::string closest_name(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace kiln::nn
