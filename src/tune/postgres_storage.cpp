#include "postgres_storage.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "kiln/core/error.h"
#include "storage.h"

namespace kiln::tune {

using namespace storage_detail;

namespace {

// Schema version 1: the SQLite tables with PostgreSQL types. Persisted: change only with a
// migration in ensure_schema().
const char* const kSchemaV1 = R"sql(
CREATE TABLE kiln_schema_version (version INTEGER NOT NULL);
CREATE TABLE studies (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  direction SMALLINT NOT NULL,
  next_trial_number BIGINT NOT NULL DEFAULT 0);
CREATE TABLE study_attrs (
  study_id BIGINT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (study_id, key));
CREATE TABLE trials (
  id BIGSERIAL PRIMARY KEY,
  study_id BIGINT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  number BIGINT NOT NULL,
  state SMALLINT NOT NULL,
  value DOUBLE PRECISION, value_type SMALLINT,
  datetime_start DOUBLE PRECISION NOT NULL, datetime_complete DOUBLE PRECISION, heartbeat DOUBLE PRECISION,
  UNIQUE (study_id, number));
CREATE INDEX trials_study_state ON trials (study_id, state);
CREATE TABLE trial_params (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, distribution TEXT NOT NULL, PRIMARY KEY (trial_id, name));
CREATE TABLE trial_intermediate_values (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  step BIGINT NOT NULL, value DOUBLE PRECISION, value_type SMALLINT NOT NULL, PRIMARY KEY (trial_id, step));
CREATE TABLE trial_attrs (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (trial_id, key));
INSERT INTO kiln_schema_version (version) VALUES (1);
)sql";

/// Serializes schema creation between workers that start together (pg_advisory_xact_lock key).
const char* const kSchemaLockKey = "7305451294";

/// The connection is gone (or the server is shutting the session down): reconnect and retry.
struct ConnectionLost : IoError {
  using IoError::IoError;
};
/// Deadlock or serialization failure: roll back and retry.
struct RetryableConflict : IoError {
  using IoError::IoError;
};

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

std::string P(int64_t v) { return std::to_string(v); }
std::string P(double v) { return format_double(v); }

}  // namespace

/// An owned PGresult.
class PostgresStorage::Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  ~Result() {
    if (r_) PQclear(r_);
  }
  [[nodiscard]] int rows() const { return PQntuples(r_); }
  [[nodiscard]] bool null(int row, int c) const { return PQgetisnull(r_, row, c) != 0; }
  [[nodiscard]] std::string text(int row, int c) const {
    return std::string(PQgetvalue(r_, row, c), static_cast<std::size_t>(PQgetlength(r_, row, c)));
  }
  [[nodiscard]] int64_t i64(int row, int c) const { return std::strtoll(PQgetvalue(r_, row, c), nullptr, 10); }
  [[nodiscard]] double f64(int row, int c) const { return std::strtod(PQgetvalue(r_, row, c), nullptr); }
  [[nodiscard]] std::optional<double> opt(int row, int c) const {
    return null(row, c) ? std::nullopt : std::optional<double>(f64(row, c));
  }
  [[nodiscard]] bool boolean(int row, int c) const { return PQgetvalue(r_, row, c)[0] == 't'; }
  [[nodiscard]] PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

PostgresStorage::PostgresStorage(const std::string& url, const StorageOptions& options)
    : url_(url), display_(mask_url_password(url)), options_(options) {
  try {
    connect();
    ensure_schema();
  } catch (...) {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    throw;
  }
}

PostgresStorage::~PostgresStorage() {
  if (conn_) PQfinish(conn_);
}

void PostgresStorage::connect() {
  const std::string timeout = std::to_string(static_cast<int>(std::ceil(options_.connect_timeout_seconds)));
  // Entries before `dbname` (the expanded URL) yield to the URL's own settings.
  const char* const keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* const values[] = {timeout.c_str(), "kiln", url_.c_str(), nullptr};
  if (conn_) PQfinish(conn_);
  conn_ = PQconnectdbParams(keywords, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    const std::string why = conn_ ? trimmed(PQerrorMessage(conn_)) : "out of memory";
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    throw IoError("cannot connect to PostgreSQL at " + display_ + ": " + why +
                  "; check that the server is running and accepts TCP connections on that host and port, and that "
                  "the user, password and database in the URL are right (try the URL with psql)");
  }
  // Shortest-exact float output, whatever the server's default.
  exec("SET extra_float_digits = 3");
}

PostgresStorage::Result PostgresStorage::exec(const char* sql, const Params& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  Result res(PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
  const auto status = res.get() ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
  const std::string msg = trimmed(res.get() ? PQresultErrorMessage(res.get()) : PQerrorMessage(conn_));
  const char* state = res.get() ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string code = state ? state : "";
  if (PQstatus(conn_) != CONNECTION_OK || code.rfind("08", 0) == 0 || code.rfind("57P0", 0) == 0) {
    throw ConnectionLost(msg.empty() ? "connection lost" : msg);
  }
  if (code == "40001" || code == "40P01") throw RetryableConflict(msg);
  std::string what = sql;
  if (what.size() > 80) what = what.substr(0, 77) + "...";
  throw IoError(display_ + ": `" + trimmed(what) + "` failed: " + msg + (code.empty() ? "" : " (SQLSTATE " + code + ")") +
                "; check the server log and that the database user may read and write Kiln's tables");
}

template <class F>
auto PostgresStorage::transaction(const char* what, bool snapshot, F&& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  constexpr int kMaxConflictAttempts = 8;
  int conflicts = 0;
  for (int connection_attempt = 1;;) {
    bool committing = false;
    try {
      if (!conn_) {
        connect();
      } else if (PQstatus(conn_) != CONNECTION_OK) {
        PQreset(conn_);
        if (PQstatus(conn_) != CONNECTION_OK) {
          throw IoError("lost the connection to PostgreSQL at " + display_ + " and could not reconnect: " +
                        trimmed(PQerrorMessage(conn_)) + "; check that the server is up and reachable");
        }
        exec("SET extra_float_digits = 3");
      } else if (PQtransactionStatus(conn_) != PQTRANS_IDLE) {
        PQclear(PQexec(conn_, "ROLLBACK"));
      }
      exec(snapshot ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
      if constexpr (std::is_void_v<decltype(fn())>) {
        fn();
        committing = true;
        exec("COMMIT");
        return;
      } else {
        auto result = fn();
        committing = true;
        exec("COMMIT");
        return result;
      }
    } catch (const ConnectionLost& e) {
      if (committing) {
        throw IoError(display_ + ": the connection dropped while committing " + what +
                      ", which may or may not have been applied (" + e.what() + "); check the study before repeating it");
      }
      if (++connection_attempt > 2) {
        throw IoError(display_ + ": the connection dropped during " + what + " again after reconnecting (" + e.what() +
                      "); check that the server is up and reachable");
      }
      // The server rolled the transaction back: run it again on a new connection.
    } catch (const RetryableConflict& e) {
      if (conn_ && PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
      if (++conflicts >= kMaxConflictAttempts) {
        throw IoError(display_ + ": " + what + " kept colliding with concurrent workers (" + e.what() + ") " +
                      std::to_string(conflicts) + " times; retry later");
      }
    } catch (...) {
      if (conn_ && PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
      throw;
    }
  }
}

void PostgresStorage::ensure_schema() {
  transaction("creating the schema", false, [&] {
    exec("SELECT pg_advisory_xact_lock($1::bigint)", {std::string(kSchemaLockKey)});
    const Result r = exec(
        "SELECT to_regclass('kiln_schema_version') IS NOT NULL, "
        "to_regclass('studies') IS NOT NULL OR to_regclass('trials') IS NOT NULL");
    if (r.boolean(0, 0)) {
      const Result v = exec("SELECT max(version) FROM kiln_schema_version");
      if (v.null(0, 0)) throw IoError(display_ + ": table kiln_schema_version is empty; the database was edited by hand");
      const int64_t version = v.i64(0, 0);
      if (version > kSchemaVersion) {
        throw IoError(display_ + ": study schema version " + std::to_string(version) +
                      " is newer than this Kiln understands (" + std::to_string(kSchemaVersion) +
                      "); upgrade Kiln on this worker, or use another database");
      }
      if (version < 1) throw IoError(display_ + ": unknown study schema version " + std::to_string(version));
      // Migrations from older versions go here, each in this transaction.
    } else if (r.boolean(0, 1)) {
      throw IoError(display_ + ": holds tables `studies`/`trials` but no kiln_schema_version: not a Kiln study "
                    "database (an Optuna one?); create a separate database for Kiln");
    } else {
      Result created(PQexec(conn_, kSchemaV1));
      if (PQresultStatus(created.get()) != PGRES_COMMAND_OK) {
        const std::string msg = trimmed(PQresultErrorMessage(created.get()));
        if (PQstatus(conn_) != CONNECTION_OK) throw ConnectionLost(msg);
        throw IoError(display_ + ": creating Kiln's tables failed: " + msg +
                      "; the database user needs the CREATE privilege on the schema");
      }
    }
  });
}

namespace {
const char* const kStudyByName = "SELECT id, name, direction FROM studies WHERE name = $1";
const char* const kStudyById = "SELECT id, name, direction FROM studies WHERE id = $1";
const char* const kNow = "extract(epoch from statement_timestamp())::float8";
}  // namespace

std::optional<StudyInfo> PostgresStorage::load_study(const char* sql, const std::string& key) {
  const Result q = exec(sql, {key});
  if (q.rows() == 0) return std::nullopt;
  StudyInfo info;
  info.id = q.i64(0, 0);
  info.name = q.text(0, 1);
  info.direction = static_cast<Direction>(q.i64(0, 2));
  const Result attrs = exec("SELECT key, value FROM study_attrs WHERE study_id = $1", {P(info.id)});
  for (int i = 0; i < attrs.rows(); ++i) info.user_attrs[attrs.text(i, 0)] = attrs.text(i, 1);
  return info;
}

StudyInfo PostgresStorage::create_or_load_study(const std::string& name, Direction direction) {
  if (name.empty()) throw ConfigError(display_ + ": study name is empty; name the study");
  return transaction("create_or_load_study", false, [&] {
    exec("INSERT INTO studies (name, direction) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
         {name, P(static_cast<int64_t>(direction))});
    StudyInfo found = *load_study(kStudyByName, name);
    if (found.direction != direction) {
      throw ConfigError(display_ + ": study '" + name + "' exists with direction " + to_string(found.direction) +
                        ", not " + to_string(direction) + "; use direction " + to_string(found.direction) +
                        " or another study name");
    }
    return found;
  });
}

std::optional<StudyInfo> PostgresStorage::find_study(const std::string& name) {
  return transaction("find_study", true, [&] { return load_study(kStudyByName, name); });
}

std::vector<StudyInfo> PostgresStorage::list_studies() {
  return transaction("list_studies", true, [&] {
    const Result ids = exec("SELECT id FROM studies ORDER BY id");
    std::vector<StudyInfo> out;
    for (int i = 0; i < ids.rows(); ++i) out.push_back(*load_study(kStudyById, ids.text(i, 0)));
    return out;
  });
}

void PostgresStorage::set_study_attr(int64_t study_id, const std::string& key, const std::string& value) {
  transaction("set_study_attr", false, [&] {
    if (exec("SELECT 1 FROM studies WHERE id = $1", {P(study_id)}).rows() == 0) {
      throw ConfigError(display_ + ": no study with id " + std::to_string(study_id) + "; create or load it first");
    }
    exec("INSERT INTO study_attrs (study_id, key, value) VALUES ($1, $2, $3) "
         "ON CONFLICT (study_id, key) DO UPDATE SET value = EXCLUDED.value",
         {P(study_id), key, value});
  });
}

Trial PostgresStorage::create_trial(int64_t study_id, const std::map<std::string, double>& params,
                                    const std::map<std::string, Distribution>& distributions) {
  validate_trial_params(params, distributions, display_ + ": study id " + std::to_string(study_id));
  const StoredDistributions stored = stored_distributions(params, distributions);
  return transaction("create_trial", false, [&] {
    // The UPDATE locks the study row until COMMIT: concurrent workers take numbers one at a time.
    const Result num = exec(
        "UPDATE studies SET next_trial_number = next_trial_number + 1 WHERE id = $1 RETURNING next_trial_number - 1",
        {P(study_id)});
    if (num.rows() == 0) {
      throw ConfigError(display_ + ": no study with id " + std::to_string(study_id) + "; create or load it first");
    }
    Trial t;
    t.number = num.i64(0, 0);
    const Result ins = exec((std::string("INSERT INTO trials (study_id, number, state, datetime_start, heartbeat) "
                                         "VALUES ($1, $2, 0, ") + kNow + ", " + kNow + ") RETURNING id, datetime_start")
                                .c_str(),
                            {P(study_id), P(t.number)});
    t.id = ins.i64(0, 0);
    t.datetime_start = ins.f64(0, 1);
    t.heartbeat = t.datetime_start;
    for (const auto& [name, value] : params) {
      exec("INSERT INTO trial_params (trial_id, name, value, distribution) VALUES ($1, $2, $3, $4)",
           {P(t.id), name, P(value), stored.json.at(name)});
    }
    t.params = params;
    t.distributions = stored.used;
    return t;
  });
}

int64_t PostgresStorage::require_trial_state(int64_t trial_id, const char* doing, bool lock) {
  const Result q = exec(lock ? "SELECT state FROM trials WHERE id = $1 FOR UPDATE" : "SELECT state FROM trials WHERE id = $1",
                        {P(trial_id)});
  if (q.rows() == 0) {
    throw ConfigError(display_ + ": " + doing + ": no trial with id " + std::to_string(trial_id) +
                      "; pass an id returned by create_trial()");
  }
  return q.i64(0, 0);
}

void PostgresStorage::report(int64_t trial_id, int64_t step, double value) {
  transaction("report", false, [&] {
    // The row lock keeps a concurrent finish or stale-fail from slipping between check and insert.
    const int64_t state = require_trial_state(trial_id, "report", true);
    require_running_for_report(display_, trial_id, step, state);
    const auto type = value_type_of(value);
    exec("INSERT INTO trial_intermediate_values (trial_id, step, value, value_type) VALUES ($1, $2, $3, $4) "
         "ON CONFLICT (trial_id, step) DO UPDATE SET value = EXCLUDED.value, value_type = EXCLUDED.value_type",
         {P(trial_id), P(step), type == ValueType::kFinite ? std::optional<std::string>(P(value)) : std::nullopt,
          P(static_cast<int64_t>(type))});
  });
}

bool PostgresStorage::finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) {
  validate_finish_state(display_, trial_id, state);
  std::optional<std::string> stored, type;
  if (value) {
    const auto t = value_type_of(*value);
    if (t == ValueType::kFinite) stored = P(*value);
    type = P(static_cast<int64_t>(t));
  }
  return transaction("finish_trial", false, [&] {
    const Result up = exec((std::string("UPDATE trials SET state = $2, value = $3, value_type = $4, datetime_complete = ") +
                            kNow + " WHERE id = $1 AND state = 0 RETURNING id")
                               .c_str(),
                           {P(trial_id), P(static_cast<int64_t>(state)), stored, type});
    if (up.rows() > 0) return true;
    require_trial_state(trial_id, "finish_trial", false);
    return false;
  });
}

void PostgresStorage::set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) {
  transaction("set_trial_attr", false, [&] {
    require_trial_state(trial_id, "set_trial_attr", false);
    exec("INSERT INTO trial_attrs (trial_id, key, value) VALUES ($1, $2, $3) "
         "ON CONFLICT (trial_id, key) DO UPDATE SET value = EXCLUDED.value",
         {P(trial_id), key, value});
  });
}

void PostgresStorage::heartbeat(int64_t trial_id) {
  transaction("heartbeat", false, [&] {
    const Result up =
        exec((std::string("UPDATE trials SET heartbeat = ") + kNow + " WHERE id = $1 AND state = 0 RETURNING id").c_str(),
             {P(trial_id)});
    if (up.rows() == 0) require_trial_state(trial_id, "heartbeat", false);
  });
}

std::vector<int64_t> PostgresStorage::fail_stale_trials(int64_t study_id, double timeout_seconds) {
  validate_stale_timeout(timeout_seconds);
  const std::string reason = stale_reason(timeout_seconds);
  return transaction("fail_stale_trials", false, [&] {
    const Result up = exec((std::string("UPDATE trials SET state = 3, datetime_complete = ") + kNow +
                            " WHERE study_id = $1 AND state = 0 AND heartbeat < " + kNow + " - $2::float8 RETURNING number, id")
                               .c_str(),
                           {P(study_id), P(timeout_seconds)});
    std::vector<int64_t> numbers;
    for (int i = 0; i < up.rows(); ++i) {
      exec("INSERT INTO trial_attrs (trial_id, key, value) VALUES ($1, 'fail_reason', $2) "
           "ON CONFLICT (trial_id, key) DO UPDATE SET value = EXCLUDED.value",
           {up.text(i, 1), reason});
      numbers.push_back(up.i64(i, 0));
    }
    std::sort(numbers.begin(), numbers.end());
    return numbers;
  });
}

namespace {

const char* const kTrialColumns =
    "SELECT id, number, state, value, value_type, datetime_start, datetime_complete, heartbeat FROM trials ";

Trial read_trial_row(const PostgresStorage::Result& q, int row, const std::string& where) {
  Trial t;
  t.id = q.i64(row, 0);
  t.number = q.i64(row, 1);
  t.state = static_cast<TrialState>(q.i64(row, 2));
  if (!q.null(row, 4)) {
    t.value = decode_value(q.opt(row, 3), q.i64(row, 4), where + ": trial id " + std::to_string(t.id) + " value");
  }
  t.datetime_start = q.f64(row, 5);
  t.datetime_complete = q.opt(row, 6);
  t.heartbeat = q.opt(row, 7);
  return t;
}

}  // namespace

void PostgresStorage::load_trial_details(std::vector<Trial>& trials, int64_t study_id, int64_t trial_id) {
  std::unordered_map<int64_t, Trial*> by_id;
  for (auto& t : trials) by_id[t.id] = &t;
  const bool one = trial_id >= 0;
  const Params key = {P(one ? trial_id : study_id)};
  const Result params = exec(one ? "SELECT trial_id, name, value, distribution FROM trial_params WHERE trial_id = $1"
                                 : "SELECT p.trial_id, p.name, p.value, p.distribution FROM trial_params p "
                                   "JOIN trials t ON t.id = p.trial_id WHERE t.study_id = $1",
                             key);
  for (int i = 0; i < params.rows(); ++i) {
    const auto it = by_id.find(params.i64(i, 0));
    if (it == by_id.end()) continue;
    const std::string name = params.text(i, 1);
    it->second->params[name] = params.f64(i, 2);
    it->second->distributions[name] = parse_distribution(
        params.text(i, 3), display_ + ": trial id " + std::to_string(it->first) + " parameter `" + name + "`");
  }
  const Result values =
      exec(one ? "SELECT trial_id, step, value, value_type FROM trial_intermediate_values WHERE trial_id = $1"
               : "SELECT v.trial_id, v.step, v.value, v.value_type FROM trial_intermediate_values v "
                 "JOIN trials t ON t.id = v.trial_id WHERE t.study_id = $1",
           key);
  for (int i = 0; i < values.rows(); ++i) {
    const auto it = by_id.find(values.i64(i, 0));
    if (it == by_id.end()) continue;
    it->second->intermediate[values.i64(i, 1)] = decode_value(
        values.opt(i, 2), values.i64(i, 3), display_ + ": trial id " + std::to_string(it->first) + " step");
  }
  const Result attrs = exec(one ? "SELECT trial_id, key, value FROM trial_attrs WHERE trial_id = $1"
                                : "SELECT a.trial_id, a.key, a.value FROM trial_attrs a "
                                  "JOIN trials t ON t.id = a.trial_id WHERE t.study_id = $1",
                            key);
  for (int i = 0; i < attrs.rows(); ++i) {
    const auto it = by_id.find(attrs.i64(i, 0));
    if (it != by_id.end()) it->second->user_attrs[attrs.text(i, 1)] = attrs.text(i, 2);
  }
}

std::vector<Trial> PostgresStorage::trials(int64_t study_id, const std::vector<TrialState>& states) {
  return transaction("trials", true, [&] {
    const Result q = exec((std::string(kTrialColumns) + "WHERE study_id = $1 ORDER BY number").c_str(), {P(study_id)});
    std::vector<Trial> out;
    for (int i = 0; i < q.rows(); ++i) {
      Trial t = read_trial_row(q, i, display_);
      if (states.empty() || std::find(states.begin(), states.end(), t.state) != states.end()) out.push_back(std::move(t));
    }
    load_trial_details(out, study_id, -1);
    return out;
  });
}

Trial PostgresStorage::trial(int64_t trial_id) {
  return transaction("trial", true, [&] {
    const Result q = exec((std::string(kTrialColumns) + "WHERE id = $1").c_str(), {P(trial_id)});
    if (q.rows() == 0) {
      throw ConfigError(display_ + ": no trial with id " + std::to_string(trial_id) +
                        "; pass an id returned by create_trial()");
    }
    std::vector<Trial> out{read_trial_row(q, 0, display_)};
    load_trial_details(out, -1, trial_id);
    return out.front();
  });
}

}  // namespace kiln::tune
