#include "kiln/tune/study.h"

#include <cmath>

#include "format.h"
#include "kiln/core/error.h"

namespace kiln::tune {

using format_detail::precise_number;

namespace {

const char* kind_name(Distribution::Kind k) {
  switch (k) {
    case Distribution::Kind::kFloat: return "float";
    case Distribution::Kind::kInt: return "int";
    case Distribution::Kind::kCategorical: return "categorical";
  }
  return "?";
}

}  // namespace

const char* to_string(Direction d) { return d == Direction::kMinimize ? "minimize" : "maximize"; }

const char* to_string(TrialState s) {
  switch (s) {
    case TrialState::kRunning: return "running";
    case TrialState::kComplete: return "complete";
    case TrialState::kPruned: return "pruned";
    case TrialState::kFailed: return "failed";
  }
  return "?";
}

void Distribution::validate(const std::string& name) const {
  const std::string where = "space." + name;
  if (kind == Kind::kCategorical) {
    if (choices.empty()) throw ConfigError(where + ".choices is empty; list at least one choice");
    for (const auto& c : choices) {
      if (!(c.is_number() || c.is_string() || c.is_boolean())) {
        throw ConfigError(where + ".choices holds " + c.dump() + "; choices must be numbers, strings or booleans");
      }
    }
    return;
  }
  if (!std::isfinite(low) || !std::isfinite(high)) throw ConfigError(where + ": low and high must be finite numbers");
  if (low > high) throw ConfigError(where + ": low (" + precise_number(low) + ") must be <= high (" + precise_number(high) + ")");
  if (log && low <= 0) throw ConfigError(where + ": log scale needs low > 0, got " + precise_number(low));
  if (step) {
    if (!(*step > 0)) throw ConfigError(where + ".step must be > 0, got " + precise_number(*step));
    if (kind == Kind::kFloat && log) throw ConfigError(where + ": step and log cannot both be set for a float");
    if (kind == Kind::kInt && log && *step != 1) throw ConfigError(where + ": an int on a log scale needs step 1");
  }
  if (kind == Kind::kInt) {
    if (low != std::floor(low) || high != std::floor(high)) {
      throw ConfigError(where + ": int bounds must be integers, got " + precise_number(low) + ".." + precise_number(high));
    }
    if (step && *step != std::floor(*step)) throw ConfigError(where + ".step must be an integer for an int, got " + precise_number(*step));
  }
}

nlohmann::json Distribution::to_external(double internal) const {
  switch (kind) {
    case Kind::kCategorical: {
      const auto i = static_cast<std::size_t>(internal);
      if (internal < 0 || i >= choices.size() || static_cast<double>(i) != internal) {
        throw Error("categorical index " + precise_number(internal) + " is outside the " + std::to_string(choices.size()) + " choices");
      }
      return choices[i];
    }
    case Kind::kInt: return static_cast<int64_t>(std::llround(internal));
    case Kind::kFloat: return internal;
  }
  return nullptr;
}

bool Distribution::contains(double internal) const {
  if (std::isnan(internal)) return false;
  if (kind == Kind::kCategorical) {
    return internal >= 0 && internal < static_cast<double>(choices.size()) && internal == std::floor(internal);
  }
  // Optuna adjusts high down to the last point of the step grid.
  double hi = high;
  const double st = step.value_or(kind == Kind::kInt ? 1.0 : 0.0);
  if (st > 0) hi = low + std::floor((high - low) / st) * st;
  if (internal < low || internal > hi) return false;
  if (st > 0) {
    const double k = (internal - low) / st;
    return std::fabs(k - std::round(k)) < 1e-8;
  }
  return true;
}

bool Distribution::single() const {
  if (kind == Kind::kCategorical) return choices.size() == 1;
  if (low == high) return true;
  const double st = step.value_or(kind == Kind::kInt ? 1.0 : 0.0);
  return st > 0 && (high - low) < st;
}

nlohmann::json Distribution::to_json() const {
  nlohmann::json j;
  j["type"] = kind_name(kind);
  if (kind == Kind::kCategorical) {
    j["choices"] = choices;
    return j;
  }
  j["low"] = low;
  j["high"] = high;
  if (log) j["log"] = true;
  if (step) j["step"] = *step;
  return j;
}

Distribution Distribution::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw ConfigError(where + " must be a mapping with a `type`, got " + j.dump());
  Distribution d;
  const std::string type = j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
  if (type == "float") {
    d.kind = Kind::kFloat;
  } else if (type == "int") {
    d.kind = Kind::kInt;
  } else if (type == "categorical") {
    d.kind = Kind::kCategorical;
  } else {
    throw ConfigError(where + ".type must be float, int or categorical, got " +
                      (j.contains("type") ? j["type"].dump() : std::string("nothing")));
  }
  for (const auto& [key, value] : j.items()) {
    const bool known = key == "type" || (d.kind == Kind::kCategorical ? key == "choices"
                                                                       : (key == "low" || key == "high" || key == "log" || key == "step"));
    if (!known) throw ConfigError(where + ": unknown key `" + key + "` for a " + type + " parameter");
  }
  const auto number = [&](const char* key) {
    if (!j.contains(key)) throw ConfigError(where + "." + key + " is missing");
    if (!j[key].is_number()) throw ConfigError(where + "." + key + " must be a number, got " + j[key].dump());
    return j[key].get<double>();
  };
  if (d.kind == Kind::kCategorical) {
    if (!j.contains("choices") || !j["choices"].is_array()) throw ConfigError(where + ".choices must be a list");
    for (const auto& c : j["choices"]) d.choices.push_back(c);
  } else {
    d.low = number("low");
    d.high = number("high");
    if (j.contains("log")) {
      if (!j["log"].is_boolean()) throw ConfigError(where + ".log must be true or false, got " + j["log"].dump());
      d.log = j["log"].get<bool>();
    }
    if (j.contains("step")) d.step = number("step");
    if (d.kind == Kind::kInt && !d.step) d.step = 1.0;
  }
  return d;
}

bool Distribution::operator==(const Distribution& o) const {
  return kind == o.kind && low == o.low && high == o.high && log == o.log && step == o.step && choices == o.choices;
}

nlohmann::json Trial::external_params() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, internal] : params) {
    const auto it = distributions.find(name);
    j[name] = it == distributions.end() ? nlohmann::json(internal) : it->second.to_external(internal);
  }
  return j;
}

}  // namespace kiln::tune
