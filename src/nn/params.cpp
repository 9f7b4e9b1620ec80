#include "params.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "kiln/core/error.h"

namespace kiln::nn {

std::string param_field(const std::string& key) { return "model.params." + key; }

std::string join_names(const std::vector<std::string>& names, bool quote) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += quote ? "\"" + n + "\"" : n;
  }
  return out;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_name(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

void check_known_keys(const std::string& family, const nlohmann::json& params, const nlohmann::json& defaults) {
  if (params.is_null()) return;
  if (!params.is_object()) {
    throw ConfigError("model.params must be an object of family \"" + family + "\" parameters, got " + params.dump());
  }
  std::vector<std::string> valid;
  if (defaults.is_object()) {
    for (const auto& item : defaults.items()) valid.push_back(item.key());
  }
  for (const auto& item : params.items()) {
    if (std::find(valid.begin(), valid.end(), item.key()) != valid.end()) continue;
    std::string msg = param_field(item.key()) + " is not a parameter of model family \"" + family + "\"; ";
    msg += valid.empty() ? std::string("it takes no parameters") : "valid parameters: " + join_names(valid, false);
    const std::string hint = closest_name(item.key(), valid);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
    throw ConfigError(msg);
  }
}

nlohmann::json merge_params(const nlohmann::json& defaults, const nlohmann::json& params) {
  nlohmann::json merged = defaults.is_object() ? defaults : nlohmann::json::object();
  if (params.is_object()) {
    for (const auto& item : params.items()) merged[item.key()] = item.value();
  }
  return merged;
}

ParamReader::ParamReader(std::string family, const nlohmann::json& params, const nlohmann::json& defaults)
    : family_(std::move(family)) {
  check_known_keys(family_, params, defaults);
  merged_ = merge_params(defaults, params);
}

const nlohmann::json& ParamReader::value(const std::string& key) const {
  const auto it = merged_.find(key);
  if (it == merged_.end()) {
    throw ConfigError(param_field(key) + " is required by model family \"" + family_ + "\"");
  }
  return *it;
}

namespace {

bool as_integer(const nlohmann::json& v, int64_t* out) {
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      *out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

}  // namespace

int64_t ParamReader::integer(const std::string& key, int64_t min) const {
  const auto& v = value(key);
  int64_t n = 0;
  if (!as_integer(v, &n)) {
    throw ConfigError(param_field(key) + " must be an integer, got " + v.dump());
  }
  if (n < min) {
    throw ConfigError(param_field(key) + " must be >= " + std::to_string(min) + ", got " + v.dump());
  }
  return n;
}

std::vector<int64_t> ParamReader::integer_list(const std::string& key, int64_t min) const {
  const auto& v = value(key);
  const std::string expected = " must be a non-empty list of integers >= " + std::to_string(min);
  if (!v.is_array() || v.empty()) {
    throw ConfigError(param_field(key) + expected + ", got " + v.dump());
  }
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t n = 0;
    if (!as_integer(v[i], &n) || n < min) {
      throw ConfigError(param_field(key) + expected + ", got " + v.dump() + " (element " + std::to_string(i) +
                        " is " + v[i].dump() + ")");
    }
    out.push_back(n);
  }
  return out;
}

double ParamReader::probability(const std::string& key) const {
  const auto& v = value(key);
  if (!v.is_number()) {
    throw ConfigError(param_field(key) + " must be a number in [0, 1), got " + v.dump());
  }
  const double p = v.get<double>();
  if (!(p >= 0.0 && p < 1.0)) {
    throw ConfigError(param_field(key) + " must be in [0, 1), got " + v.dump());
  }
  return p;
}

double ParamReader::positive(const std::string& key) const {
  const auto& v = value(key);
  if (!v.is_number() || !(v.get<double>() > 0.0) || !std::isfinite(v.get<double>())) {
    throw ConfigError(param_field(key) + " must be a number > 0, got " + v.dump());
  }
  return v.get<double>();
}

double ParamReader::non_negative(const std::string& key) const {
  const auto& v = value(key);
  if (!v.is_number() || !(v.get<double>() >= 0.0) || !std::isfinite(v.get<double>())) {
    throw ConfigError(param_field(key) + " must be a number >= 0, got " + v.dump());
  }
  return v.get<double>();
}

bool ParamReader::boolean(const std::string& key) const {
  const auto& v = value(key);
  if (!v.is_boolean()) {
    throw ConfigError(param_field(key) + " must be true or false, got " + v.dump());
  }
  return v.get<bool>();
}

std::string ParamReader::choice(const std::string& key, const std::vector<std::string>& choices) const {
  const auto& v = value(key);
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  }
  std::string msg = param_field(key) + " must be one of " + join_names(choices, true) + ", got " + v.dump();
  if (v.is_string()) {
    const std::string hint = closest_name(v.get<std::string>(), choices);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
  }
  throw ConfigError(msg);
}

}  // namespace kiln::nn
