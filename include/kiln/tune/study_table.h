// A study as text for people: the live trial table `kiln tune` prints, the stop summary, and the
// whole-study listing of `kiln tune --show`. Formatting only; nothing here prints or is persisted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/study.h"
#include "kiln/tune/tuner.h"

namespace kiln::tune {

/// Trials of a study by state.
struct StateCounts {
  int64_t running = 0, complete = 0, pruned = 0, failed = 0;
};
[[nodiscard]] StateCounts count_states(const std::vector<Trial>& trials);

/// The table's header line (no newline): trial, state, the metric's name, duration, params.
[[nodiscard]] std::string table_header(const std::string& metric);

/// One trial as a table line (no newline): number, state, value (with " @STEP" for a pruned trial),
/// duration so far, parameters (4 significant digits), and for a failed trial its compact reason.
[[nodiscard]] std::string trial_row(const Trial& trial);

/// A trial's "fail_reason" on one line: its first line, and the last line of the output it quotes
/// after "last output:" (where a command prints its error), each clipped (160 and 120 characters).
[[nodiscard]] std::string compact_reason(const std::string& reason);

/// "best value V at trial N: a=1 b=2" (exact values), or "no complete trial yet".
[[nodiscard]] std::string best_line(const std::optional<Trial>& best);

/// "importance (...): a 0.80  b 0.20" (no newline), or "" when importances cannot be computed.
[[nodiscard]] std::string importance_line(const std::vector<Trial>& trials, const SearchSpace& space);

/// "stopped: WHY. This run: ...; study: ..." for a run that ended with `summary` in a study whose
/// trials are counted in `study`.
[[nodiscard]] std::string stop_line(const TuneSummary& summary, const StateCounts& study);

/// `kiln tune --show`: the study's name, direction and metric, a table of every trial, counts by
/// state, importances over `space` (when computable) and the best line; each line ends in "\n".
[[nodiscard]] std::string study_listing(const StudyInfo& study, const std::vector<Trial>& trials,
                                        const SearchSpace& space);

}  // namespace kiln::tune
