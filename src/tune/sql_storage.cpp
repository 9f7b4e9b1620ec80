#include "sql_storage.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <unordered_map>

#include "storage.h"

namespace kiln::tune {

using namespace storage_detail;
using Access = SqlConnection::Access;

namespace {

/// The schema version this build writes and reads (table kiln_schema_version, one row).
/// Bump it only together with a migration from every older version; a newer one is refused.
constexpr int kSchemaVersion = 1;

// Schema version 1, {tokens} filled from the SqlDialect. Persisted: change only with a migration in
// ensure_schema() (tests/tune/sql_storage_test.cpp holds the text each database got from earlier Kilns).
const char* const kSchemaV1 = R"sql(
CREATE TABLE kiln_schema_version (version INTEGER NOT NULL);
CREATE TABLE studies (
  id {id},
  name TEXT NOT NULL UNIQUE,
  direction {int16} NOT NULL,
  next_trial_number {int64} NOT NULL DEFAULT 0);
CREATE TABLE study_attrs (
  study_id {int64} NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (study_id, key));
CREATE TABLE trials (
  id {id},
  study_id {int64} NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  number {int64} NOT NULL,
  state {int16} NOT NULL,
  value {real}, value_type {int16},
  datetime_start {real} NOT NULL, datetime_complete {real}, heartbeat {real},
  UNIQUE (study_id, number));
CREATE INDEX trials_study_state ON trials (study_id, state);
CREATE TABLE trial_params (
  trial_id {int64} NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  name TEXT NOT NULL, value {real} NOT NULL, distribution TEXT NOT NULL, PRIMARY KEY (trial_id, name));
CREATE TABLE trial_intermediate_values (
  trial_id {int64} NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  step {int64} NOT NULL, value {real}, value_type {int16} NOT NULL, PRIMARY KEY (trial_id, step));
CREATE TABLE trial_attrs (
  trial_id {int64} NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (trial_id, key));
INSERT INTO kiln_schema_version (version) VALUES (1);
)sql";

std::string schema_v1(const SqlDialect& d) {
  std::string sql = kSchemaV1;
  for (const auto& [token, text] : {std::pair<const char*, const char*>{"{id}", d.id_column}, {"{int64}", d.int64_type},
                                    {"{int16}", d.int16_type}, {"{real}", d.real_type}}) {
    for (auto pos = sql.find(token); pos != std::string::npos; pos = sql.find(token, pos)) {
      sql.replace(pos, std::strlen(token), text);
    }
  }
  return sql;
}

/// How a stored double is encoded next to its column (SQLite turns NaN into NULL, PostgreSQL keeps
/// it; storing non-finite values as NULL plus this tag makes both agree). Persisted: never renumber.
enum class ValueType { kFinite = 0, kPositiveInfinity = 1, kNegativeInfinity = 2, kNan = 3 };

ValueType value_type_of(double v) {
  if (std::isnan(v)) return ValueType::kNan;
  if (std::isinf(v)) return v > 0 ? ValueType::kPositiveInfinity : ValueType::kNegativeInfinity;
  return ValueType::kFinite;
}

/// Appends the (value, value_type) parameters `v` is stored as (both NULL for no value).
void add_value(SqlParams& params, std::optional<double> v) {
  const ValueType type = v ? value_type_of(*v) : ValueType::kNan;
  if (v && type == ValueType::kFinite) params.emplace_back(*v); else params.emplace_back();
  if (v) params.emplace_back(static_cast<int64_t>(type)); else params.emplace_back();
}

/// The double a stored (value, type) pair stands for. Throws IoError naming `where` for an unknown type.
double decode_value(std::optional<double> stored, int64_t type, const std::string& where) {
  switch (type) {
    case static_cast<int64_t>(ValueType::kFinite):
      if (!stored) throw IoError(where + ": a finite value is stored as NULL; the database was edited by hand");
      return *stored;
    case static_cast<int64_t>(ValueType::kPositiveInfinity): return HUGE_VAL;
    case static_cast<int64_t>(ValueType::kNegativeInfinity): return -HUGE_VAL;
    case static_cast<int64_t>(ValueType::kNan): return std::nan("");
  }
  throw IoError(where + ": unknown value type " + std::to_string(type) +
                " (known: 0 finite, 1 +inf, 2 -inf, 3 NaN); was the database written by a newer Kiln?");
}

/// A trial state as the parameter the trials.state column compares with.
SqlValue state_param(TrialState s) { return static_cast<int64_t>(s); }

/// Throws ConfigError when a parameter has no distribution, its distribution is invalid, or its
/// value lies outside its domain (distributions without a parameter are not stored, not checked).
void validate_trial_params(const std::map<std::string, double>& params,
                           const std::map<std::string, Distribution>& distributions, const std::string& where) {
  for (const auto& [name, value] : params) {
    const auto it = distributions.find(name);
    if (it == distributions.end()) {
      throw ConfigError(where + ": parameter `" + name + "` has no distribution; pass one for every parameter");
    }
    it->second.validate(name);
    if (!it->second.contains(value)) {
      throw ConfigError(where + ": parameter `" + name + "` = " + format_double(value) + " lies outside its distribution " +
                        it->second.to_json().dump() + "; sample it from that distribution");
    }
  }
}

/// Parses a stored distribution; throws IoError naming `where` when it is malformed.
Distribution parse_distribution(const std::string& text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(where + ": stored distribution is not JSON (" + e.what() + "); the database was edited or corrupted");
  }
  try {
    return Distribution::from_json(j, where);
  } catch (const ConfigError& e) {
    throw IoError(std::string(e.what()) + " (stored distribution; was the database written by a newer Kiln?)");
  }
}

const char* const kStudyByName = "SELECT id, name, direction FROM studies WHERE name = $1";
const char* const kStudyById = "SELECT id, name, direction FROM studies WHERE id = $1";
const char* const kTrialState = "SELECT state FROM trials WHERE id = $1";
const char* const kUpsertTrialAttr =
    "INSERT INTO trial_attrs (trial_id, key, value) VALUES ($1, $2, $3) "
    "ON CONFLICT (trial_id, key) DO UPDATE SET value = excluded.value";
const std::string kTrialColumns =
    "SELECT id, number, state, value, value_type, datetime_start, datetime_complete, heartbeat FROM trials ";
const std::string kTrialsOfStudy = kTrialColumns + "WHERE study_id = $1 ORDER BY number";
const std::string kTrialById = kTrialColumns + "WHERE id = $1";

Trial read_trial_row(const SqlRows& q, int row, const std::string& where) {
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

SqlStorage::SqlStorage(std::unique_ptr<SqlConnection> connection)
    : db_(std::move(connection)),
      display_(db_->display()),
      locked_state_sql_(std::string(kTrialState) + db_->dialect().for_update) {
  ensure_schema();
}

template <class F>
auto SqlStorage::transaction(const char* what, Access access, F&& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  constexpr int kMaxConflictAttempts = 8;
  int conflicts = 0;
  for (int connection_attempt = 1;;) {
    bool committing = false;
    try {
      db_->begin(access);
      if constexpr (std::is_void_v<decltype(fn())>) {
        fn();
        committing = true;
        db_->commit();
        return;
      } else {
        auto result = fn();
        committing = true;
        db_->commit();
        return result;
      }
    } catch (const SqlConnectionLost& e) {
      if (committing) {
        throw IoError(display_ + ": the connection dropped while committing " + what +
                      ", which may or may not have been applied (" + e.what() + "); check the study before repeating it");
      }
      if (++connection_attempt > 2) {
        throw IoError(display_ + ": the connection dropped during " + what + " again after reconnecting (" + e.what() +
                      "); check that the server is up and reachable");
      }
      // The server rolled the transaction back: begin() runs it again on a new connection.
    } catch (const SqlConflict& e) {
      db_->rollback();
      if (++conflicts >= kMaxConflictAttempts) {
        throw IoError(display_ + ": " + what + " kept colliding with concurrent workers (" + e.what() + ") " +
                      std::to_string(conflicts) + " times; retry later");
      }
    } catch (...) {
      db_->rollback();
      throw;
    }
  }
}

void SqlStorage::ensure_schema() {
  const SqlDialect& d = db_->dialect();
  transaction("creating the schema", Access::kWrite, [&] {
    if (d.schema_lock) db_->query(d.schema_lock);
    const SqlRows probe = db_->query(d.probe_tables);
    if (probe.i64(0, 0)) {
      const SqlRows v = db_->query("SELECT max(version) FROM kiln_schema_version");
      if (v.null(0, 0)) throw IoError(display_ + ": table kiln_schema_version is empty; the database was edited by hand");
      const int64_t version = v.i64(0, 0);
      if (version > kSchemaVersion) {
        throw IoError(display_ + ": study schema version " + std::to_string(version) +
                      " is newer than this Kiln understands (" + std::to_string(kSchemaVersion) + "); " +
                      d.newer_schema_fix);
      }
      if (version < 1) throw IoError(display_ + ": unknown study schema version " + std::to_string(version));
      // Migrations from older versions go here, each in this transaction.
    } else if (probe.i64(0, 1)) {
      throw IoError(display_ + ": holds tables `studies`/`trials` but no kiln_schema_version: not a Kiln study "
                    "database (an Optuna one?); " + d.foreign_schema_fix);
    } else {
      db_->execute_script(schema_v1(d));
    }
  });
}

std::optional<StudyInfo> SqlStorage::load_study(const char* sql, const SqlValue& key) {
  const SqlRows q = db_->query(sql, {key});
  if (q.empty()) return std::nullopt;
  StudyInfo info;
  info.id = q.i64(0, 0);
  info.name = q.text(0, 1);
  info.direction = static_cast<Direction>(q.i64(0, 2));
  const SqlRows attrs = db_->query("SELECT key, value FROM study_attrs WHERE study_id = $1", {info.id});
  for (int i = 0; i < attrs.size(); ++i) info.user_attrs[attrs.text(i, 0)] = attrs.text(i, 1);
  return info;
}

StudyInfo SqlStorage::create_or_load_study(const std::string& name, Direction direction) {
  if (name.empty()) throw ConfigError(display_ + ": study name is empty; name the study");
  return transaction("create_or_load_study", Access::kWrite, [&] {
    db_->query("INSERT INTO studies (name, direction) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
               {name, static_cast<int64_t>(direction)});
    StudyInfo found = *load_study(kStudyByName, name);
    if (found.direction != direction) {
      throw ConfigError(display_ + ": study '" + name + "' exists with direction " + to_string(found.direction) +
                        ", not " + to_string(direction) + "; use direction " + to_string(found.direction) +
                        " or another study name");
    }
    return found;
  });
}

std::optional<StudyInfo> SqlStorage::find_study(const std::string& name) {
  return transaction("find_study", Access::kRead, [&] { return load_study(kStudyByName, name); });
}

std::vector<StudyInfo> SqlStorage::list_studies() {
  return transaction("list_studies", Access::kRead, [&] {
    const SqlRows ids = db_->query("SELECT id FROM studies ORDER BY id");
    std::vector<StudyInfo> out;
    for (int i = 0; i < ids.size(); ++i) out.push_back(*load_study(kStudyById, ids.i64(i, 0)));
    return out;
  });
}

void SqlStorage::set_study_attr(int64_t study_id, const std::string& key, const std::string& value) {
  transaction("set_study_attr", Access::kWrite, [&] {
    if (db_->query("SELECT 1 FROM studies WHERE id = $1", {study_id}).empty()) {
      throw ConfigError(display_ + ": no study with id " + std::to_string(study_id) + "; create or load it first");
    }
    db_->query("INSERT INTO study_attrs (study_id, key, value) VALUES ($1, $2, $3) "
               "ON CONFLICT (study_id, key) DO UPDATE SET value = excluded.value",
               {study_id, key, value});
  });
}

Trial SqlStorage::create_trial(int64_t study_id, const std::map<std::string, double>& params,
                               const std::map<std::string, Distribution>& distributions) {
  validate_trial_params(params, distributions, display_ + ": study id " + std::to_string(study_id));
  Trial t;
  t.params = params;
  std::map<std::string, std::string> json;  // each stored distribution's text
  for (const auto& [name, value] : params) {
    t.distributions[name] = distributions.at(name);
    json[name] = t.distributions[name].to_json().dump();
  }
  return transaction("create_trial", Access::kWrite, [&] {
    // The UPDATE write-locks the study row until COMMIT: concurrent workers take numbers one at a time.
    const SqlRows num = db_->query(
        "UPDATE studies SET next_trial_number = next_trial_number + 1 WHERE id = $1 RETURNING next_trial_number - 1",
        {study_id});
    if (num.empty()) {
      throw ConfigError(display_ + ": no study with id " + std::to_string(study_id) + "; create or load it first");
    }
    t.number = num.i64(0, 0);
    const SqlRows ins = db_->query(
        "INSERT INTO trials (study_id, number, state, datetime_start, heartbeat) VALUES ($1, $2, $3, {now}, {now}) "
        "RETURNING id, datetime_start",
        {study_id, t.number, state_param(TrialState::kRunning)});
    t.id = ins.i64(0, 0);
    t.datetime_start = ins.f64(0, 1);
    t.heartbeat = t.datetime_start;
    for (const auto& [name, value] : params) {
      db_->query("INSERT INTO trial_params (trial_id, name, value, distribution) VALUES ($1, $2, $3, $4)",
                 {t.id, name, value, json.at(name)});
    }
    return t;
  });
}

int64_t SqlStorage::require_trial_state(int64_t trial_id, const char* doing, bool lock) {
  const SqlRows q = db_->query(lock ? locked_state_sql_ : kTrialState, {trial_id});
  if (q.empty()) {
    throw ConfigError(display_ + ": " + doing + ": no trial with id " + std::to_string(trial_id) +
                      "; pass an id returned by create_trial()");
  }
  return q.i64(0, 0);
}

void SqlStorage::report(int64_t trial_id, int64_t step, double value) {
  transaction("report", Access::kWrite, [&] {
    // The row lock keeps a concurrent finish or stale-fail from slipping between check and insert.
    const auto state = static_cast<TrialState>(require_trial_state(trial_id, "report", true));
    if (state != TrialState::kRunning) {
      throw TrialNotRunningError(display_ + ": report(step " + std::to_string(step) + ") on trial id " +
                                 std::to_string(trial_id) + ", which is " + to_string(state) +
                                 ", not running; it was finished, or failed as stale by another worker (see its "
                                 "fail_reason attribute): stop the trial");
    }
    SqlParams p{trial_id, step};
    add_value(p, value);
    db_->query("INSERT INTO trial_intermediate_values (trial_id, step, value, value_type) VALUES ($1, $2, $3, $4) "
               "ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value, value_type = excluded.value_type",
               p);
  });
}

bool SqlStorage::finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) {
  if (state == TrialState::kRunning) {
    throw ConfigError(display_ + ": finish_trial(trial id " + std::to_string(trial_id) +
                      ") with state running; pass complete, pruned or failed");
  }
  SqlParams p{trial_id, state_param(state), state_param(TrialState::kRunning)};
  add_value(p, value);
  return transaction("finish_trial", Access::kWrite, [&] {
    const SqlRows up = db_->query(
        "UPDATE trials SET state = $2, value = $4, value_type = $5, datetime_complete = {now} "
        "WHERE id = $1 AND state = $3 RETURNING id",
        p);
    if (!up.empty()) return true;
    require_trial_state(trial_id, "finish_trial", false);
    return false;
  });
}

void SqlStorage::set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) {
  transaction("set_trial_attr", Access::kWrite, [&] {
    require_trial_state(trial_id, "set_trial_attr", false);
    db_->query(kUpsertTrialAttr, {trial_id, key, value});
  });
}

void SqlStorage::heartbeat(int64_t trial_id) {
  transaction("heartbeat", Access::kWrite, [&] {
    const SqlRows up = db_->query("UPDATE trials SET heartbeat = {now} WHERE id = $1 AND state = $2 RETURNING id",
                                  {trial_id, state_param(TrialState::kRunning)});
    if (up.empty()) require_trial_state(trial_id, "heartbeat", false);
  });
}

std::vector<int64_t> SqlStorage::fail_stale_trials(int64_t study_id, double timeout_seconds) {
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds)) {
    throw ConfigError("fail_stale_trials: timeout_seconds must be a finite number > 0, got " + format_double(timeout_seconds));
  }
  const std::string reason = "no heartbeat for more than " + format_double(timeout_seconds) +
                             " s: the worker running this trial stopped (crashed, was killed or lost its connection)";
  return transaction("fail_stale_trials", Access::kWrite, [&] {
    const SqlRows up = db_->query(
        "UPDATE trials SET state = $3, datetime_complete = {now} "
        "WHERE study_id = $1 AND state = $4 AND heartbeat < {now} - $2 RETURNING number, id",
        {study_id, timeout_seconds, state_param(TrialState::kFailed), state_param(TrialState::kRunning)});
    std::vector<int64_t> numbers;
    for (int i = 0; i < up.size(); ++i) {
      db_->query(kUpsertTrialAttr, {up.i64(i, 1), std::string("fail_reason"), reason});
      numbers.push_back(up.i64(i, 0));
    }
    std::sort(numbers.begin(), numbers.end());
    return numbers;
  });
}

void SqlStorage::load_trial_details(std::vector<Trial>& trials, int64_t study_id, int64_t trial_id) {
  std::unordered_map<int64_t, Trial*> by_id;
  for (auto& t : trials) by_id[t.id] = &t;
  const bool one = trial_id >= 0;
  const SqlParams key{one ? trial_id : study_id};
  const auto trial_of = [&](const SqlRows& rows, int i) {
    const auto it = by_id.find(rows.i64(i, 0));
    return it == by_id.end() ? nullptr : it->second;
  };
  const SqlRows params = db_->query(one ? "SELECT trial_id, name, value, distribution FROM trial_params WHERE trial_id = $1"
                                        : "SELECT p.trial_id, p.name, p.value, p.distribution FROM trial_params p "
                                          "JOIN trials t ON t.id = p.trial_id WHERE t.study_id = $1",
                                    key);
  for (int i = 0; i < params.size(); ++i) {
    if (Trial* t = trial_of(params, i)) {
      const std::string name = params.text(i, 1);
      t->params[name] = params.f64(i, 2);
      t->distributions[name] = parse_distribution(
          params.text(i, 3), display_ + ": trial id " + std::to_string(t->id) + " parameter `" + name + "`");
    }
  }
  const SqlRows values =
      db_->query(one ? "SELECT trial_id, step, value, value_type FROM trial_intermediate_values WHERE trial_id = $1"
                     : "SELECT v.trial_id, v.step, v.value, v.value_type FROM trial_intermediate_values v "
                       "JOIN trials t ON t.id = v.trial_id WHERE t.study_id = $1",
                 key);
  for (int i = 0; i < values.size(); ++i) {
    if (Trial* t = trial_of(values, i)) {
      t->intermediate[values.i64(i, 1)] =
          decode_value(values.opt(i, 2), values.i64(i, 3), display_ + ": trial id " + std::to_string(t->id) + " step");
    }
  }
  const SqlRows attrs = db_->query(one ? "SELECT trial_id, key, value FROM trial_attrs WHERE trial_id = $1"
                                       : "SELECT a.trial_id, a.key, a.value FROM trial_attrs a "
                                         "JOIN trials t ON t.id = a.trial_id WHERE t.study_id = $1",
                                   key);
  for (int i = 0; i < attrs.size(); ++i) {
    if (Trial* t = trial_of(attrs, i)) t->user_attrs[attrs.text(i, 1)] = attrs.text(i, 2);
  }
}

std::vector<Trial> SqlStorage::trials(int64_t study_id, const std::vector<TrialState>& states) {
  return transaction("trials", Access::kRead, [&] {
    const SqlRows q = db_->query(kTrialsOfStudy, {study_id});
    std::vector<Trial> out;
    for (int i = 0; i < q.size(); ++i) {
      Trial t = read_trial_row(q, i, display_);
      if (states.empty() || std::find(states.begin(), states.end(), t.state) != states.end()) out.push_back(std::move(t));
    }
    load_trial_details(out, study_id, -1);
    return out;
  });
}

Trial SqlStorage::trial(int64_t trial_id) {
  return transaction("trial", Access::kRead, [&] {
    const SqlRows q = db_->query(kTrialById, {trial_id});
    if (q.empty()) {
      throw ConfigError(display_ + ": no trial with id " + std::to_string(trial_id) +
                        "; pass an id returned by create_trial()");
    }
    std::vector<Trial> out{read_trial_row(q, 0, display_)};
    load_trial_details(out, -1, trial_id);
    return out.front();
  });
}

}  // namespace kiln::tune
