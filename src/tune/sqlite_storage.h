// Study storage in one SQLite file: no server, shared by the processes of one machine.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "kiln/tune/storage.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kiln::tune {

/// Study storage in a SQLite database file (WAL journal, synchronous=NORMAL: a crashed process
/// loses nothing it committed; a power loss may roll back the last transactions).
/// Thread-safe: one connection behind a mutex. Many processes may open the same file: writes run
/// in `BEGIN IMMEDIATE` transactions and wait up to StorageOptions::busy_timeout_seconds for each
/// other, so trial numbers stay unique and gap-free. Do not fork() while an instance is open and
/// use the database in the child (SQLite's rule); open a new one there after closing this one.
class SqliteStorage final : public Storage {
 public:
  /// `path`: the database file (created when absent) or ":memory:" (private to this object).
  /// `display`: how messages name it (the URL as given). Throws IoError when it cannot be opened,
  /// is not a SQLite database, is not a Kiln study database, or has a newer schema version.
  SqliteStorage(const std::string& path, const std::string& display, const StorageOptions& options);
  ~SqliteStorage() override;
  SqliteStorage(const SqliteStorage&) = delete;
  SqliteStorage& operator=(const SqliteStorage&) = delete;

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

  class Statement;  // private to sqlite_storage.cpp

 private:
  /// Runs `fn` in one transaction (`BEGIN IMMEDIATE` when `write`), under the mutex; rolls back
  /// when it throws. Defined in the .cpp, the only place it is used.
  template <class F>
  auto transaction(bool write, F&& fn);
  /// A cached prepared statement for `sql` (a string literal); reset when the Statement dies.
  sqlite3_stmt* prepare(const char* sql);
  void exec(const char* sql);
  void ensure_schema();
  void switch_to_wal();
  [[noreturn]] void fail(int rc, const std::string& doing);

  std::optional<StudyInfo> load_study(const char* sql, const std::string* name, int64_t id);
  int64_t require_trial_state(int64_t trial_id, const char* doing);
  void load_trial_details(std::vector<Trial>& trials, int64_t study_id, int64_t trial_id);

  std::mutex mu_;
  sqlite3* db_ = nullptr;
  std::string display_;
  StorageOptions options_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

}  // namespace kiln::tune
