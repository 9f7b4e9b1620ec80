// Study storage in PostgreSQL: one study shared by workers on many machines.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/storage.h"

typedef struct pg_conn PGconn;

namespace kiln::tune {

/// Study storage in a PostgreSQL database (the same tables as SqliteStorage; values travel as
/// parameters of PQexecParams, never spliced into SQL). Thread-safe: one connection behind a mutex.
/// Every state change is one transaction; trial numbers come from an UPDATE of the study row
/// (a row lock), so concurrent workers get unique, gap-free numbers. Times ("now") come from the
/// server's clock. A dropped connection is re-established on the next call; an operation cut off
/// before COMMIT is retried once on the new connection (the server rolled it back), one cut off
/// during COMMIT throws IoError (it may or may not have been applied). Deadlocks and serialization
/// failures are retried.
class PostgresStorage final : public Storage {
 public:
  /// `url`: a libpq URI (postgresql:// or postgres://). Throws IoError naming the URL with its
  /// password masked when the server cannot be reached or refuses the login, or when the database
  /// holds a newer schema version or foreign tables of the same names.
  PostgresStorage(const std::string& url, const StorageOptions& options);
  ~PostgresStorage() override;
  PostgresStorage(const PostgresStorage&) = delete;
  PostgresStorage& operator=(const PostgresStorage&) = delete;

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

  class Result;  // private to postgres_storage.cpp
  using Params = std::vector<std::optional<std::string>>;

 private:
  /// Runs `fn` in one transaction under the mutex (reconnecting first when needed, retrying as
  /// the class comment says). `snapshot`: one read-only REPEATABLE READ snapshot for all queries.
  template <class F>
  auto transaction(const char* what, bool snapshot, F&& fn);
  /// One statement with text parameters; throws IoError (or the internal retry signals).
  Result exec(const char* sql, const Params& params = {});
  void connect();
  void ensure_schema();

  std::optional<StudyInfo> load_study(const char* sql, const std::string& key);
  int64_t require_trial_state(int64_t trial_id, const char* doing, bool lock);
  void load_trial_details(std::vector<Trial>& trials, int64_t study_id, int64_t trial_id);

  std::mutex mu_;
  PGconn* conn_ = nullptr;
  std::string url_;
  std::string display_;  // url_ with the password masked
  StorageOptions options_;
};

}  // namespace kiln::tune
