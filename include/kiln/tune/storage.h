// Study storage: where every trial's state, parameters, intermediate and final values live.
// SQLite (a file, no server) by default; PostgreSQL for workers on many machines sharing one study.
// Both implementations pass the same test suite (tests/tune/storage_test.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/study.h"

namespace kiln::tune {

/// Thread-safe: one Storage may be shared by the worker threads of one process. Many processes
/// (and machines, for PostgreSQL) may open the same study concurrently; trial numbers stay
/// unique and gap-free, and every state change is a single transaction.
class Storage {
 public:
  virtual ~Storage() = default;

  /// Creates the study, or loads it when it exists. Throws ConfigError when an existing study
  /// has the other direction.
  virtual StudyInfo create_or_load_study(const std::string& name, Direction direction) = 0;
  /// The study named `name`, if any.
  [[nodiscard]] virtual std::optional<StudyInfo> find_study(const std::string& name) = 0;
  [[nodiscard]] virtual std::vector<StudyInfo> list_studies() = 0;
  virtual void set_study_attr(int64_t study_id, const std::string& key, const std::string& value) = 0;

  /// Atomically creates a kRunning trial with the study's next number, these parameters, and
  /// datetime_start = heartbeat = now. Returns it (id and number filled).
  virtual Trial create_trial(int64_t study_id, const std::map<std::string, double>& params,
                             const std::map<std::string, Distribution>& distributions) = 0;
  /// Records a value at a step (overwrites the same step). Throws when the trial is not running.
  virtual void report(int64_t trial_id, int64_t step, double value) = 0;
  /// Moves a running trial to `state` (not kRunning) with an optional value and sets
  /// datetime_complete. Returns false, changing nothing, when the trial is no longer running
  /// (for example, failed as stale by another worker).
  virtual bool finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) = 0;
  virtual void set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) = 0;
  /// Sets the trial's heartbeat to now.
  virtual void heartbeat(int64_t trial_id) = 0;
  /// Marks running trials whose heartbeat is older than `timeout_seconds` failed (user attr
  /// "fail_reason" says why). Returns their numbers.
  virtual std::vector<int64_t> fail_stale_trials(int64_t study_id, double timeout_seconds) = 0;

  /// Every trial of the study ordered by number, or only those in `states` when given.
  [[nodiscard]] virtual std::vector<Trial> trials(int64_t study_id,
                                                  const std::vector<TrialState>& states = {}) = 0;
  [[nodiscard]] virtual Trial trial(int64_t trial_id) = 0;
};

/// Opens storage from a URL: `sqlite:///abs/path.db`, `sqlite:///rel.db` style or a plain file path
/// (SQLite), `postgresql://user:pass@host:port/db` or `postgres://...` (PostgreSQL). Creates the
/// schema when absent. Throws ConfigError for an unknown scheme and IoError (naming the URL without
/// its password, and the fix) when the database cannot be opened.
[[nodiscard]] std::unique_ptr<Storage> open_storage(const std::string& url);

}  // namespace kiln::tune
