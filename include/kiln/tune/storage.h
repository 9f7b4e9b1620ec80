// Study storage: where every trial's state, parameters, intermediate and final values live.
// One SQL storage (src/tune/sql_storage.h) over two databases: SQLite (a file, no server) by default,
// PostgreSQL for workers on many machines sharing one study. Both pass the same test suite
// (tests/tune/storage_test.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/tune/study.h"

namespace kiln::tune {

/// Thrown by report() when the trial has left kRunning: finished, or failed as stale by another
/// worker. The tuning loop catches it to stop a trial whose result nobody will record.
class TrialNotRunningError : public Error {
 public:
  using Error::Error;
};

/// How open_storage() connects. Defaults suit both one laptop and a shared server.
struct StorageOptions {
  /// SQLite: how long a writer waits for a lock held by another connection or process before
  /// giving up with IoError, in seconds. Default 60.
  double busy_timeout_seconds = 60;
  /// PostgreSQL: how long connecting may take before giving up with IoError, in seconds (libpq
  /// `connect_timeout`; a `connect_timeout` in the URL wins). Default 10.
  double connect_timeout_seconds = 10;

  /// Throws ConfigError naming the field and value when one is out of range.
  void validate() const;
};

/// Thread-safe: one Storage may be shared by the worker threads of one process. Many processes
/// (and machines, for PostgreSQL) may open the same study concurrently; trial numbers stay
/// unique and gap-free, and every state change is a single transaction.
class Storage {
 public:
  virtual ~Storage() = default;

  /// Creates the study, or loads it when it exists (atomic: concurrent callers get the same
  /// study). Throws ConfigError when an existing study has the other direction.
  virtual StudyInfo create_or_load_study(const std::string& name, Direction direction) = 0;
  /// The study named `name`, if any.
  [[nodiscard]] virtual std::optional<StudyInfo> find_study(const std::string& name) = 0;
  [[nodiscard]] virtual std::vector<StudyInfo> list_studies() = 0;
  /// Sets (or overwrites) a study attribute. Throws ConfigError for an unknown study id.
  virtual void set_study_attr(int64_t study_id, const std::string& key, const std::string& value) = 0;

  /// Atomically creates a kRunning trial with the study's next number, these parameters, and
  /// datetime_start = heartbeat = now. Returns it (id and number filled). Stores each parameter's
  /// distribution (entries of `distributions` without a parameter are ignored). Throws ConfigError
  /// for an unknown study id, a parameter without a distribution, or a value outside its domain;
  /// a rejected call takes no number.
  virtual Trial create_trial(int64_t study_id, const std::map<std::string, double>& params,
                             const std::map<std::string, Distribution>& distributions) = 0;
  /// Records a value at a step (overwrites the same step; NaN and infinities round-trip). Throws
  /// TrialNotRunningError when the trial is not running, ConfigError for an unknown trial id.
  virtual void report(int64_t trial_id, int64_t step, double value) = 0;
  /// Moves a running trial to `state` (not kRunning) with an optional value and sets
  /// datetime_complete. Returns false, changing nothing, when the trial is no longer running
  /// (for example, failed as stale by another worker). Throws ConfigError for state kRunning or an
  /// unknown trial id.
  [[nodiscard]] virtual bool finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) = 0;
  /// Sets (or overwrites) a trial attribute, in any state. Throws ConfigError for an unknown id.
  virtual void set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) = 0;
  /// Sets the trial's heartbeat to now; changes nothing when the trial is no longer running.
  /// Throws ConfigError for an unknown trial id.
  virtual void heartbeat(int64_t trial_id) = 0;
  /// Marks running trials whose heartbeat is older than `timeout_seconds` failed (user attr
  /// "fail_reason" says why), in one transaction. Returns their numbers, ascending. "Now" is the
  /// database server's clock for PostgreSQL (workers' clocks may disagree), the local clock for SQLite.
  virtual std::vector<int64_t> fail_stale_trials(int64_t study_id, double timeout_seconds) = 0;

  /// Every trial of the study ordered by number, or only those in `states` when given.
  [[nodiscard]] virtual std::vector<Trial> trials(int64_t study_id,
                                                  const std::vector<TrialState>& states = {}) = 0;
  /// One trial. Throws ConfigError for an unknown trial id.
  [[nodiscard]] virtual Trial trial(int64_t trial_id) = 0;
};

/// Opens storage from a URL. SQLite, as in SQLAlchemy/Optuna: `sqlite:///relative/path.db`,
/// `sqlite:////absolute/path.db` (four slashes), `sqlite:///:memory:` (private to this Storage), or
/// a plain file path. PostgreSQL: `postgresql://user:password@host:port/database?opts` or
/// `postgres://...` (any libpq URI). Creates the schema when absent. Throws ConfigError for an
/// unknown scheme (listing the accepted forms) or bad options, and IoError (naming the URL with its
/// password masked, and the fix) when the database cannot be opened, is not a Kiln study database,
/// or has a newer schema version than this build understands.
[[nodiscard]] std::unique_ptr<Storage> open_storage(const std::string& url, const StorageOptions& options = {});

/// `url` with any password (in `user:password@` or a `password=` option) replaced by `***`.
[[nodiscard]] std::string mask_url_password(const std::string& url);

}  // namespace kiln::tune
