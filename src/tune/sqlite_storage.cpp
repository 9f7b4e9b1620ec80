#include "sqlite_storage.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <type_traits>

#include "kiln/core/error.h"
#include "storage.h"

namespace kiln::tune {

using namespace storage_detail;

namespace {

// Schema version 1. Persisted: change only with a migration in ensure_schema().
const char* const kSchemaV1 = R"sql(
CREATE TABLE kiln_schema_version (version INTEGER NOT NULL);
CREATE TABLE studies (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  direction INTEGER NOT NULL,
  next_trial_number INTEGER NOT NULL DEFAULT 0);
CREATE TABLE study_attrs (
  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (study_id, key));
CREATE TABLE trials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  state INTEGER NOT NULL,
  value REAL, value_type INTEGER,
  datetime_start REAL NOT NULL, datetime_complete REAL, heartbeat REAL,
  UNIQUE (study_id, number));
CREATE INDEX trials_study_state ON trials (study_id, state);
CREATE TABLE trial_params (
  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  name TEXT NOT NULL, value REAL NOT NULL, distribution TEXT NOT NULL, PRIMARY KEY (trial_id, name));
CREATE TABLE trial_intermediate_values (
  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  step INTEGER NOT NULL, value REAL, value_type INTEGER NOT NULL, PRIMARY KEY (trial_id, step));
CREATE TABLE trial_attrs (
  trial_id INTEGER NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (trial_id, key));
INSERT INTO kiln_schema_version (version) VALUES (1);
)sql";

const char* const kTrialColumns =
    "SELECT id, number, state, value, value_type, datetime_start, datetime_complete, heartbeat FROM trials ";

}  // namespace

/// A cached prepared statement in use: bind, step, read columns. Resets on destruction.
class SqliteStorage::Statement {
 public:
  Statement(SqliteStorage& s, const char* sql) : s_(s), st_(s.prepare(sql)) {}
  ~Statement() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(st_, i, v)); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(st_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind_null(int i) { return check(sqlite3_bind_null(st_, i)); }
  /// Binds a value and its ValueType at i and i + 1 (NULL value for non-finite numbers).
  Statement& bind_value(int i, double v) {
    const auto type = value_type_of(v);
    if (type == ValueType::kFinite) bind(i, v); else bind_null(i);
    return bind(i + 1, static_cast<int64_t>(type));
  }
  /// True while rows come; false when done. Throws IoError on failure.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    s_.fail(rc, std::string("running `") + sqlite3_sql(st_) + "`");
  }
  [[nodiscard]] bool null(int c) { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
  [[nodiscard]] int64_t i64(int c) { return sqlite3_column_int64(st_, c); }
  [[nodiscard]] double f64(int c) { return sqlite3_column_double(st_, c); }
  [[nodiscard]] std::optional<double> opt(int c) { return null(c) ? std::nullopt : std::optional<double>(f64(c)); }
  [[nodiscard]] std::string text(int c) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st_, c))) : std::string();
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) s_.fail(rc, "binding a parameter");
    return *this;
  }
  SqliteStorage& s_;
  sqlite3_stmt* st_;
};

SqliteStorage::SqliteStorage(const std::string& path, const std::string& display, const StorageOptions& options)
    : display_(display), options_(options) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  try {
    if (rc != SQLITE_OK) fail(rc, "opening the database file");
    sqlite3_busy_timeout(db_, static_cast<int>(std::lround(options.busy_timeout_seconds * 1000)));
    exec("PRAGMA foreign_keys = ON");
    if (path != ":memory:") switch_to_wal();
    exec("PRAGMA synchronous = NORMAL");
    ensure_schema();
  } catch (...) {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    statements_.clear();
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw;
  }
}

void SqliteStorage::switch_to_wal() {
  // Switching the journal mode takes the write lock while this connection already reads the file. When
  // another connection holds that lock (creating the schema of a fresh file), SQLite returns SQLITE_BUSY
  // at once instead of calling the busy handler, since waiting there could deadlock. Nothing is held
  // here between attempts, so retrying until storage.busy_timeout_seconds is safe.
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(options_.busy_timeout_seconds));
  auto pause = std::chrono::microseconds(500);
  sqlite3_stmt* st = prepare("PRAGMA journal_mode = WAL");
  for (;;) {
    const int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    const int primary = rc & 0xff;
    const auto now = Clock::now();
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || now >= deadline) {
      fail(rc, "switching to write-ahead logging");
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::microseconds(20000));
  }
}

SqliteStorage::~SqliteStorage() {
  for (auto& [sql, st] : statements_) sqlite3_finalize(st);
  sqlite3_close_v2(db_);
}

void SqliteStorage::fail(int rc, const std::string& doing) {
  const std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const std::string where = display_ + ": " + doing + ": " + detail + "; ";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw IoError(where + "another connection held the database lock for longer than storage.busy_timeout_seconds (" +
                    format_double(options_.busy_timeout_seconds) +
                    " s); raise it, or stop the process that keeps the file locked");
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      throw IoError(where + "the file is not a SQLite database or is corrupt; point the storage at a Kiln study "
                    "database or at a new file");
    case SQLITE_CANTOPEN:
      throw IoError(where + "check that the directory exists and that the file and directory are writable");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      throw IoError(where + "the database is read-only here; check the permissions of the file and its directory");
    case SQLITE_FULL:
      throw IoError(where + "the disk is full; free space and retry");
    case SQLITE_CONSTRAINT:
      throw IoError(where + "a constraint failed; the database may have been edited by hand");
  }
  throw IoError(where + "check the file and the disk");
}

sqlite3_stmt* SqliteStorage::prepare(const char* sql) {
  const auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  const int rc = sqlite3_prepare_v2(db_, sql, -1, &st, nullptr);
  if (rc != SQLITE_OK) fail(rc, std::string("preparing `") + sql + "`");
  statements_.emplace(sql, st);
  return st;
}

void SqliteStorage::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) fail(rc, std::string("running `") + (std::strlen(sql) > 60 ? "schema SQL" : sql) + "`");
}

template <class F>
auto SqliteStorage::transaction(bool write, F&& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  exec(write ? "BEGIN IMMEDIATE" : "BEGIN");
  try {
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      exec("COMMIT");
    } else {
      auto result = fn();
      exec("COMMIT");
      return result;
    }
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void SqliteStorage::ensure_schema() {
  std::lock_guard<std::mutex> lock(mu_);
  exec("BEGIN IMMEDIATE");
  try {
    bool versioned = false;
    bool foreign = false;
    {
      Statement tables(*this, "SELECT name FROM sqlite_master WHERE type = 'table'");
      while (tables.step()) {
        const std::string name = tables.text(0);
        if (name == "kiln_schema_version") versioned = true;
        if (name == "studies" || name == "trials") foreign = true;
      }
    }
    if (versioned) {
      Statement v(*this, "SELECT version FROM kiln_schema_version");
      if (!v.step()) throw IoError(display_ + ": table kiln_schema_version is empty; the database was edited by hand");
      const int64_t version = v.i64(0);
      if (version > kSchemaVersion) {
        throw IoError(display_ + ": study schema version " + std::to_string(version) +
                      " is newer than this Kiln understands (" + std::to_string(kSchemaVersion) +
                      "); upgrade Kiln, or use another database file");
      }
      if (version < 1) throw IoError(display_ + ": unknown study schema version " + std::to_string(version));
      // Migrations from older versions go here, each in this transaction.
    } else if (foreign) {
      throw IoError(display_ + ": holds tables `studies`/`trials` but no kiln_schema_version: not a Kiln study database "
                    "(an Optuna one?); use a new file for Kiln");
    } else {
      exec(kSchemaV1);
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<StudyInfo> SqliteStorage::load_study(const char* sql, const std::string* name, int64_t id) {
  StudyInfo info;
  {
    Statement q(*this, sql);
    if (name) q.bind(1, *name); else q.bind(1, id);
    if (!q.step()) return std::nullopt;
    info.id = q.i64(0);
    info.name = q.text(1);
    info.direction = static_cast<Direction>(q.i64(2));
  }
  Statement attrs(*this, "SELECT key, value FROM study_attrs WHERE study_id = ?1");
  attrs.bind(1, info.id);
  while (attrs.step()) info.user_attrs[attrs.text(0)] = attrs.text(1);
  return info;
}

namespace {
const char* const kStudyByName = "SELECT id, name, direction FROM studies WHERE name = ?1";
const char* const kStudyById = "SELECT id, name, direction FROM studies WHERE id = ?1";
}  // namespace

StudyInfo SqliteStorage::create_or_load_study(const std::string& name, Direction direction) {
  if (name.empty()) throw ConfigError(display_ + ": study name is empty; name the study");
  return transaction(true, [&] {
    auto found = load_study(kStudyByName, &name, 0);
    if (found) {
      if (found->direction != direction) {
        throw ConfigError(display_ + ": study '" + name + "' exists with direction " + to_string(found->direction) +
                          ", not " + to_string(direction) + "; use direction " + to_string(found->direction) +
                          " or another study name");
      }
      return *found;
    }
    Statement ins(*this, "INSERT INTO studies (name, direction) VALUES (?1, ?2)");
    ins.bind(1, name).bind(2, static_cast<int64_t>(direction)).step();
    StudyInfo info;
    info.id = sqlite3_last_insert_rowid(db_);
    info.name = name;
    info.direction = direction;
    return info;
  });
}

std::optional<StudyInfo> SqliteStorage::find_study(const std::string& name) {
  return transaction(false, [&] { return load_study(kStudyByName, &name, 0); });
}

std::vector<StudyInfo> SqliteStorage::list_studies() {
  return transaction(false, [&] {
    std::vector<int64_t> ids;
    {
      Statement q(*this, "SELECT id FROM studies ORDER BY id");
      while (q.step()) ids.push_back(q.i64(0));
    }
    std::vector<StudyInfo> out;
    for (const int64_t id : ids) out.push_back(*load_study(kStudyById, nullptr, id));
    return out;
  });
}

void SqliteStorage::set_study_attr(int64_t study_id, const std::string& key, const std::string& value) {
  transaction(true, [&] {
    Statement q(*this, "SELECT 1 FROM studies WHERE id = ?1");
    if (!q.bind(1, study_id).step()) {
      throw ConfigError(display_ + ": no study with id " + std::to_string(study_id) + "; create or load it first");
    }
    Statement ins(*this,
                  "INSERT INTO study_attrs (study_id, key, value) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (study_id, key) DO UPDATE SET value = excluded.value");
    ins.bind(1, study_id).bind(2, key).bind(3, value).step();
  });
}

Trial SqliteStorage::create_trial(int64_t study_id, const std::map<std::string, double>& params,
                                  const std::map<std::string, Distribution>& distributions) {
  validate_trial_params(params, distributions, display_ + ": study id " + std::to_string(study_id));
  const StoredDistributions stored = stored_distributions(params, distributions);
  return transaction(true, [&] {
    Trial t;
    {
      Statement num(*this,
                    "UPDATE studies SET next_trial_number = next_trial_number + 1 WHERE id = ?1 "
                    "RETURNING next_trial_number - 1");
      if (!num.bind(1, study_id).step()) {
        throw ConfigError(display_ + ": no study with id " + std::to_string(study_id) + "; create or load it first");
      }
      t.number = num.i64(0);
    }
    t.datetime_start = now_unix_seconds();
    t.heartbeat = t.datetime_start;
    Statement ins(*this,
                  "INSERT INTO trials (study_id, number, state, datetime_start, heartbeat) VALUES (?1, ?2, 0, ?3, ?3)");
    ins.bind(1, study_id).bind(2, t.number).bind(3, t.datetime_start).step();
    t.id = sqlite3_last_insert_rowid(db_);
    for (const auto& [name, value] : params) {
      Statement p(*this, "INSERT INTO trial_params (trial_id, name, value, distribution) VALUES (?1, ?2, ?3, ?4)");
      p.bind(1, t.id).bind(2, name).bind(3, value).bind(4, stored.json.at(name)).step();
    }
    t.params = params;
    t.distributions = stored.used;
    return t;
  });
}

int64_t SqliteStorage::require_trial_state(int64_t trial_id, const char* doing) {
  Statement q(*this, "SELECT state FROM trials WHERE id = ?1");
  if (!q.bind(1, trial_id).step()) {
    throw ConfigError(display_ + ": " + doing + ": no trial with id " + std::to_string(trial_id) +
                      "; pass an id returned by create_trial()");
  }
  return q.i64(0);
}

void SqliteStorage::report(int64_t trial_id, int64_t step, double value) {
  transaction(true, [&] {
    const int64_t state = require_trial_state(trial_id, "report");
    require_running_for_report(display_, trial_id, step, state);
    Statement ins(*this,
                  "INSERT INTO trial_intermediate_values (trial_id, step, value, value_type) VALUES (?1, ?2, ?3, ?4) "
                  "ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value, value_type = excluded.value_type");
    ins.bind(1, trial_id).bind(2, step).bind_value(3, value).step();
  });
}

bool SqliteStorage::finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) {
  validate_finish_state(display_, trial_id, state);
  return transaction(true, [&] {
    Statement up(*this,
                 "UPDATE trials SET state = ?2, value = ?3, value_type = ?4, datetime_complete = ?5 "
                 "WHERE id = ?1 AND state = 0 RETURNING id");
    up.bind(1, trial_id).bind(2, static_cast<int64_t>(state)).bind(5, now_unix_seconds());
    if (value) up.bind_value(3, *value); else up.bind_null(3).bind_null(4);
    if (up.step()) return true;
    require_trial_state(trial_id, "finish_trial");
    return false;
  });
}

void SqliteStorage::set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) {
  transaction(true, [&] {
    require_trial_state(trial_id, "set_trial_attr");
    Statement ins(*this,
                  "INSERT INTO trial_attrs (trial_id, key, value) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT (trial_id, key) DO UPDATE SET value = excluded.value");
    ins.bind(1, trial_id).bind(2, key).bind(3, value).step();
  });
}

void SqliteStorage::heartbeat(int64_t trial_id) {
  transaction(true, [&] {
    Statement up(*this, "UPDATE trials SET heartbeat = ?2 WHERE id = ?1 AND state = 0 RETURNING id");
    if (!up.bind(1, trial_id).bind(2, now_unix_seconds()).step()) require_trial_state(trial_id, "heartbeat");
  });
}

std::vector<int64_t> SqliteStorage::fail_stale_trials(int64_t study_id, double timeout_seconds) {
  validate_stale_timeout(timeout_seconds);
  return transaction(true, [&] {
    const double now = now_unix_seconds();
    std::vector<std::pair<int64_t, int64_t>> failed;  // (number, id)
    {
      Statement up(*this,
                   "UPDATE trials SET state = 3, datetime_complete = ?2 "
                   "WHERE study_id = ?1 AND state = 0 AND heartbeat < ?3 RETURNING number, id");
      up.bind(1, study_id).bind(2, now).bind(3, now - timeout_seconds);
      while (up.step()) failed.emplace_back(up.i64(0), up.i64(1));
    }
    const std::string reason = stale_reason(timeout_seconds);
    std::vector<int64_t> numbers;
    for (const auto& [number, id] : failed) {
      Statement ins(*this,
                    "INSERT INTO trial_attrs (trial_id, key, value) VALUES (?1, 'fail_reason', ?2) "
                    "ON CONFLICT (trial_id, key) DO UPDATE SET value = excluded.value");
      ins.bind(1, id).bind(2, reason).step();
      numbers.push_back(number);
    }
    std::sort(numbers.begin(), numbers.end());
    return numbers;
  });
}

namespace {

Trial read_trial_row(SqliteStorage::Statement& q, const std::string& where);

}  // namespace

void SqliteStorage::load_trial_details(std::vector<Trial>& trials, int64_t study_id, int64_t trial_id) {
  std::unordered_map<int64_t, Trial*> by_id;
  for (auto& t : trials) by_id[t.id] = &t;
  const bool one = trial_id >= 0;
  const int64_t key = one ? trial_id : study_id;
  {
    Statement q(*this, one ? "SELECT trial_id, name, value, distribution FROM trial_params WHERE trial_id = ?1"
                           : "SELECT p.trial_id, p.name, p.value, p.distribution FROM trial_params p "
                             "JOIN trials t ON t.id = p.trial_id WHERE t.study_id = ?1");
    q.bind(1, key);
    while (q.step()) {
      const auto it = by_id.find(q.i64(0));
      if (it == by_id.end()) continue;
      const std::string name = q.text(1);
      it->second->params[name] = q.f64(2);
      it->second->distributions[name] = parse_distribution(
          q.text(3), display_ + ": trial id " + std::to_string(it->first) + " parameter `" + name + "`");
    }
  }
  {
    Statement q(*this, one ? "SELECT trial_id, step, value, value_type FROM trial_intermediate_values WHERE trial_id = ?1"
                           : "SELECT v.trial_id, v.step, v.value, v.value_type FROM trial_intermediate_values v "
                             "JOIN trials t ON t.id = v.trial_id WHERE t.study_id = ?1");
    q.bind(1, key);
    while (q.step()) {
      const auto it = by_id.find(q.i64(0));
      if (it == by_id.end()) continue;
      it->second->intermediate[q.i64(1)] =
          decode_value(q.opt(2), q.i64(3), display_ + ": trial id " + std::to_string(it->first) + " step");
    }
  }
  Statement q(*this, one ? "SELECT trial_id, key, value FROM trial_attrs WHERE trial_id = ?1"
                         : "SELECT a.trial_id, a.key, a.value FROM trial_attrs a "
                           "JOIN trials t ON t.id = a.trial_id WHERE t.study_id = ?1");
  q.bind(1, key);
  while (q.step()) {
    const auto it = by_id.find(q.i64(0));
    if (it != by_id.end()) it->second->user_attrs[q.text(1)] = q.text(2);
  }
}

namespace {

Trial read_trial_row(SqliteStorage::Statement& q, const std::string& where) {
  Trial t;
  t.id = q.i64(0);
  t.number = q.i64(1);
  t.state = static_cast<TrialState>(q.i64(2));
  if (!q.null(4)) t.value = decode_value(q.opt(3), q.i64(4), where + ": trial id " + std::to_string(t.id) + " value");
  t.datetime_start = q.f64(5);
  t.datetime_complete = q.opt(6);
  t.heartbeat = q.opt(7);
  return t;
}

const std::string kTrialsOfStudy = std::string(kTrialColumns) + "WHERE study_id = ?1 ORDER BY number";
const std::string kTrialById = std::string(kTrialColumns) + "WHERE id = ?1";

}  // namespace

std::vector<Trial> SqliteStorage::trials(int64_t study_id, const std::vector<TrialState>& states) {
  return transaction(false, [&] {
    std::vector<Trial> out;
    {
      Statement q(*this, kTrialsOfStudy.c_str());
      q.bind(1, study_id);
      while (q.step()) {
        Trial t = read_trial_row(q, display_);
        if (states.empty() || std::find(states.begin(), states.end(), t.state) != states.end()) out.push_back(std::move(t));
      }
    }
    load_trial_details(out, study_id, -1);
    return out;
  });
}

Trial SqliteStorage::trial(int64_t trial_id) {
  return transaction(false, [&] {
    std::vector<Trial> out;
    {
      Statement q(*this, kTrialById.c_str());
      if (!q.bind(1, trial_id).step()) {
        throw ConfigError(display_ + ": no trial with id " + std::to_string(trial_id) +
                          "; pass an id returned by create_trial()");
      }
      out.push_back(read_trial_row(q, display_));
    }
    load_trial_details(out, -1, trial_id);
    return out.front();
  });
}

}  // namespace kiln::tune
