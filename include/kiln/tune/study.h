// The data model of a tuning study, shared by samplers, pruners, storages and the tuning loop.
// Mirrors Optuna's FrozenTrial: parameters are kept in their internal representation (a double;
// the choice index for categoricals), with the distribution that maps it back to a user value.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::tune {

/// Persisted in study storage as its integer value: never renumber.
enum class Direction { kMinimize = 0, kMaximize = 1 };
/// Persisted in study storage as its integer value: never renumber, append only.
enum class TrialState { kRunning = 0, kComplete = 1, kPruned = 2, kFailed = 3 };

[[nodiscard]] const char* to_string(Direction d);
[[nodiscard]] const char* to_string(TrialState s);

/// One parameter's domain. Optuna's FloatDistribution / IntDistribution / CategoricalDistribution.
struct Distribution {
  enum class Kind { kFloat = 0, kInt = 1, kCategorical = 2 };  // persisted: never renumber
  Kind kind = Kind::kFloat;
  /// Bounds, inclusive (float and int).
  double low = 0;
  double high = 1;
  /// Sample on a log scale (float and int; low must be > 0; not with step for floats).
  bool log = false;
  /// Discretization step (float: optional; int: defaults to 1). (high - low) is rounded down to it.
  std::optional<double> step;
  /// The choices (categorical): numbers, strings or booleans, in order.
  std::vector<nlohmann::json> choices;

  /// Throws ConfigError naming `name` when the domain is empty or inconsistent.
  void validate(const std::string& name) const;
  /// Internal value (a double; the choice index for categoricals) -> the value users see.
  [[nodiscard]] nlohmann::json to_external(double internal) const;
  /// Whether `internal` lies in the domain (index in range, on the step grid within rounding).
  [[nodiscard]] bool contains(double internal) const;
  /// Whether the domain holds exactly one value.
  [[nodiscard]] bool single() const;

  [[nodiscard]] nlohmann::json to_json() const;
  /// Throws ConfigError naming `where` for a malformed description.
  [[nodiscard]] static Distribution from_json(const nlohmann::json& j, const std::string& where);

  bool operator==(const Distribution& o) const;
  bool operator!=(const Distribution& o) const { return !(*this == o); }
};

/// Parameters in declaration order (the order of the config's `space:` mapping).
using SearchSpace = std::vector<std::pair<std::string, Distribution>>;

/// A trial as stored: what it was given, what it reported, how it ended.
struct Trial {
  /// Storage-wide unique id.
  int64_t id = -1;
  /// 0-based number within its study, in creation order, unique and gap-free.
  int64_t number = -1;
  TrialState state = TrialState::kRunning;
  /// Internal representations, keyed by parameter name.
  std::map<std::string, double> params;
  std::map<std::string, Distribution> distributions;
  /// Final objective value (complete trials; pruned trials may carry their last intermediate).
  std::optional<double> value;
  /// Intermediate values by step (epoch); NaN allowed.
  std::map<int64_t, double> intermediate;
  /// Unix seconds (UTC). start is set at creation; complete when the state leaves kRunning.
  double datetime_start = 0;
  std::optional<double> datetime_complete;
  /// Last heartbeat of the worker running the trial (Unix seconds).
  std::optional<double> heartbeat;
  /// Free-form string attributes (worker id, failure reason, command output tail, ...).
  std::map<std::string, std::string> user_attrs;

  /// Parameter values as users see them ({"lr": 0.001, "batch_size": 64}).
  [[nodiscard]] nlohmann::json external_params() const;
};

struct StudyInfo {
  int64_t id = -1;
  std::string name;
  Direction direction = Direction::kMaximize;
  /// Free-form string attributes (the search space, the base config, the metric name, ...).
  std::map<std::string, std::string> user_attrs;
};

}  // namespace kiln::tune
