// Tunes any program: each trial runs a shell command with the parameters substituted, and reads the
// metric from its output with a regex.
#pragma once

#include <string>
#include <vector>

#include "kiln/tune/objective.h"
#include "kiln/tune/tune_config.h"

namespace kiln::tune {

/// Runs `/bin/sh -c COMMAND` per trial, where each `{name}` of a parameter in COMMAND is replaced
/// by its value (param_text; other braces are left alone) and each parameter is also in the
/// environment as KILN_PARAM_<NAME>, with KILN_TRIAL_NUMBER and KILN_TRIAL_DIR. Every output line
/// (stdout and stderr, in arrival order) is matched against the regexes: the value is the first
/// capture group of the last line matching metric_regex; lines matching intermediate_regex are
/// reported for pruning. A non-zero exit, a timeout, no match, or a capture that is not a number
/// fail the trial with a reason naming it. Thread-safe.
class CommandObjective : public Objective {
 public:
  explicit CommandObjective(CommandObjectiveSpec spec);
  [[nodiscard]] ObjectiveResult run(TrialContext& ctx) override;

  /// The command line of a trial with these parameter values.
  [[nodiscard]] std::string command_for(const nlohmann::json& params) const;

 private:
  CommandObjectiveSpec spec_;
};

/// Parses a captured number ("0.93", "1e-3", "nan", "inf"); false when `text` is not one.
[[nodiscard]] bool parse_number(const std::string& text, double& out);

}  // namespace kiln::tune
