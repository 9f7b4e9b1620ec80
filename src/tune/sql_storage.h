// The study storage, written once in SQL over a SqlConnection (SQLite or PostgreSQL).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "kiln/tune/storage.h"
#include "sql_connection.h"

namespace kiln::tune {

/// Study storage in SQL tables (schema version 1, the same tables on every database; values travel
/// as bound parameters, never spliced into SQL). Thread-safe: one connection behind a mutex. Every
/// state change is one transaction; trial numbers come from an UPDATE of the study row (a write
/// lock), so concurrent workers get unique, gap-free numbers. A transaction cut off by a dropped
/// connection before COMMIT is run again once on a new connection; one cut off during COMMIT throws
/// IoError (it may or may not have been applied). Deadlocks and serialization failures are retried.
class SqlStorage final : public Storage {
 public:
  /// Creates the schema when absent. Throws IoError when the database holds a newer schema
  /// version or foreign tables of the same names.
  explicit SqlStorage(std::unique_ptr<SqlConnection> connection);

  StudyInfo create_or_load_study(const std::string& name, Direction direction) override;
  [[nodiscard]] std::optional<StudyInfo> find_study(const std::string& name) override;
  [[nodiscard]] std::vector<StudyInfo> list_studies() override;
  void set_study_attr(int64_t study_id, const std::string& key, const std::string& value) override;
  Trial create_trial(int64_t study_id, const std::map<std::string, double>& params,
                     const std::map<std::string, Distribution>& distributions) override;
  void report(int64_t trial_id, int64_t step, double value) override;
  [[nodiscard]] bool finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) override;
  void set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) override;
  void heartbeat(int64_t trial_id) override;
  std::vector<int64_t> fail_stale_trials(int64_t study_id, double timeout_seconds) override;
  [[nodiscard]] std::vector<Trial> trials(int64_t study_id, const std::vector<TrialState>& states = {}) override;
  [[nodiscard]] Trial trial(int64_t trial_id) override;

 private:
  /// Runs `fn` in one transaction under the mutex, retrying as the class comment says; rolls back
  /// when it throws. `what` names the operation in messages.
  template <class F>
  auto transaction(const char* what, SqlConnection::Access access, F&& fn);
  void ensure_schema();
  std::optional<StudyInfo> load_study(const char* sql, const SqlValue& key);
  /// The trial's state; `lock` keeps its row locked until COMMIT. Throws ConfigError naming `doing`
  /// for an unknown id.
  int64_t require_trial_state(int64_t trial_id, const char* doing, bool lock);
  void load_trial_details(std::vector<Trial>& trials, int64_t study_id, int64_t trial_id);

  std::mutex mu_;
  std::unique_ptr<SqlConnection> db_;
  const std::string display_;
  const std::string locked_state_sql_;  // SELECT state ... with the dialect's row lock
};

}  // namespace kiln::tune
