// What one trial runs: an Objective evaluates a parameter set and returns a value, reporting
// intermediate values on the way so the tuning loop can prune it.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/tune/study.h"

namespace kiln::tune {

/// The running trial as an objective sees it. Provided by the tuning loop; used on the thread that
/// runs the objective.
class TrialContext {
 public:
  virtual ~TrialContext() = default;
  /// The trial as created (id, number, internal params, distributions).
  [[nodiscard]] virtual const Trial& trial() const = 0;
  /// Parameter values as users see them ({"lr": 0.0003, "batch_size": 64}).
  [[nodiscard]] virtual const nlohmann::json& params() const = 0;
  /// A directory of the trial's own (created; may hold files from an earlier attempt of the same
  /// number only if the study storage was reset), or empty when the loop has none.
  [[nodiscard]] virtual const std::filesystem::path& dir() const = 0;
  /// Records `value` at `step` (an epoch) and asks the pruner. Returns true when the trial should
  /// stop now: the objective then returns ObjectiveResult::pruned().
  [[nodiscard]] virtual bool report(int64_t step, double value) = 0;
  /// Becomes true when the loop is interrupted (SIGINT): stop and return promptly.
  [[nodiscard]] virtual const std::atomic<bool>& interrupted() const = 0;
};

struct ObjectiveResult {
  /// kComplete (with a value), kPruned (value: the last intermediate, if any) or kFailed.
  TrialState state = TrialState::kComplete;
  std::optional<double> value;
  /// Why a trial failed, for people: stored as the trial's "fail_reason" attribute.
  std::string fail_reason;
  /// The failure is the configuration's, not this parameter set's (every trial would fail the
  /// same way): the loop stops and reports it as a ConfigError.
  bool config_error = false;
  /// Extra attributes stored with the trial (e.g. "output_tail", "run_dir").
  std::map<std::string, std::string> attrs;

  [[nodiscard]] static ObjectiveResult complete(double value) { return {TrialState::kComplete, value, "", false, {}}; }
  [[nodiscard]] static ObjectiveResult pruned(std::optional<double> last) { return {TrialState::kPruned, last, "", false, {}}; }
  [[nodiscard]] static ObjectiveResult failed(std::string reason) {
    return {TrialState::kFailed, std::nullopt, std::move(reason), false, {}};
  }
};

/// Thread-safe: with --jobs N the loop calls run() from N threads at once. run() reports failures
/// of the trial through its result; it throws only for errors of the loop's own making.
class Objective {
 public:
  virtual ~Objective() = default;
  [[nodiscard]] virtual ObjectiveResult run(TrialContext& ctx) = 0;
};

/// A parameter value as text for command lines and environment variables: integers without a
/// decimal point, floats in the shortest form that reads back exactly, strings as they are.
[[nodiscard]] std::string param_text(const nlohmann::json& value);

/// "KILN_PARAM_" + the name in upper case with every character outside [A-Z0-9_] replaced by '_'.
[[nodiscard]] std::string param_env_name(const std::string& name);

}  // namespace kiln::tune
