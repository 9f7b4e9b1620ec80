// The SQL storage's schema across Kiln versions, on both databases: a study database written by an
// earlier Kiln (before the storage was one SqlStorage over a dialect) opens and keeps working, and a
// fresh one gets exactly the tables that Kiln wrote. The texts below are those earlier Kilns ran:
// never edit them; a new schema version adds a migration and its own test.
#include "kiln/tune/storage.h"

#include <cctype>

#include "tune/storage_test_util.h"

namespace kiln::tune {
namespace {

using namespace storage_testing;

const char* const kSqliteSchemaV1 = R"sql(
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

const char* const kPostgresSchemaV1 = R"sql(
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

/// Runs `sql` outside Kiln and returns its rows, one line each, cells separated by '|'.
std::string raw_rows(Backend backend, const std::string& target, const std::string& sql) {
  std::string out;
  if (backend == Backend::kSqlite) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(target.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    while (sqlite3_step(q) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(q); ++c) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(q, c));
        out += std::string(c ? "|" : "") + (text ? text : "NULL");
      }
      out += '\n';
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
  }
  PGconn* conn = PQconnectdb(target.c_str());
  EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* r = PQexec(conn, sql.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  for (int i = 0; i < PQntuples(r); ++i) {
    for (int c = 0; c < PQnfields(r); ++c) out += std::string(c ? "|" : "") + PQgetvalue(r, i, c);
    out += '\n';
  }
  PQclear(r);
  PQfinish(conn);
  return out;
}

/// The schema as the database describes it.
std::string schema_of(Backend backend, const std::string& target) {
  if (backend == Backend::kSqlite) {
    return raw_rows(backend, target, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name");
  }
  return raw_rows(backend, target,
                  "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') "
                  "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2") +
         raw_rows(backend, target, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1") +
         raw_rows(backend, target,
                  "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                  "WHERE connamespace = 'public'::regnamespace ORDER BY 1");
}

/// Fresh, empty databases for one test: files (SQLite) or databases on the test server (PostgreSQL),
/// dropped at the end.
class SqlSchemaTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres && postgres_url().empty()) GTEST_SKIP() << kHowToRunPostgres;
  }
  void TearDown() override {
    for (const auto& name : databases_) raw_sql(Backend::kPostgres, postgres_url(), "DROP DATABASE " + name);
  }

  /// A new empty database: its raw target (file path or libpq URL) and its storage URL.
  std::pair<std::string, std::string> fresh(const std::string& label) {
    if (GetParam() == Backend::kSqlite) {
      const std::string path = (dir_.path / (label + ".db")).string();
      return {path, "sqlite:///" + path};
    }
    std::string name = "kiln_" + label + "_" + unique_suffix();
    for (auto& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    raw_sql(Backend::kPostgres, postgres_url(), "CREATE DATABASE " + name);
    databases_.push_back(name);
    const std::string url = postgres_url();
    const std::string target = url.substr(0, url.rfind('/') + 1) + name;
    return {target, target};
  }

  TempDir dir_;
  std::vector<std::string> databases_;
};

TEST_P(SqlSchemaTest, OpensDatabaseWrittenByEarlierKiln) {
  const Backend backend = GetParam();
  const auto [target, url] = fresh("v1");
  const Distribution lr{Distribution::Kind::kFloat, 1e-5, 1e-1, true, std::nullopt, {}};
  // As an earlier Kiln left it: study "old" (maximize) with one complete trial whose step 0 was NaN.
  raw_sql(backend, target, std::string(backend == Backend::kSqlite ? kSqliteSchemaV1 : kPostgresSchemaV1) +
      "INSERT INTO studies (name, direction, next_trial_number) VALUES ('old', 1, 1);"
      "INSERT INTO study_attrs (study_id, key, value) VALUES (1, 'metric', 'val_f1');"
      "INSERT INTO trials (study_id, number, state, value, value_type, datetime_start, datetime_complete, heartbeat) "
      "VALUES (1, 0, 1, 0.75, 0, 1700000000.5, 1700000100.25, 1700000050);"
      "INSERT INTO trial_params (trial_id, name, value, distribution) VALUES (1, 'lr', 0.01, '" + lr.to_json().dump() + "');"
      "INSERT INTO trial_intermediate_values (trial_id, step, value, value_type) VALUES (1, 0, NULL, 3);"
      "INSERT INTO trial_attrs (trial_id, key, value) VALUES (1, 'worker', 'w1');");
  const std::string before = schema_of(backend, target);
  {
    auto s = open_storage(url);
    const auto st = s->find_study("old");
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->direction, Direction::kMaximize);
    EXPECT_EQ(st->user_attrs.at("metric"), "val_f1");
    const auto all = s->trials(st->id);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].state, TrialState::kComplete);
    EXPECT_EQ(all[0].value, 0.75);
    EXPECT_EQ(all[0].datetime_start, 1700000000.5);
    EXPECT_EQ(all[0].datetime_complete, 1700000100.25);
    EXPECT_EQ(all[0].params.at("lr"), 0.01);
    EXPECT_EQ(all[0].distributions.at("lr"), lr);
    EXPECT_TRUE(std::isnan(all[0].intermediate.at(0)));
    EXPECT_EQ(all[0].user_attrs.at("worker"), "w1");
    const Trial next = s->create_trial(st->id, {{"lr", 0.001}}, {{"lr", lr}});
    EXPECT_EQ(next.number, 1);
    EXPECT_TRUE(s->finish_trial(next.id, TrialState::kPruned, 0.5));
    EXPECT_EQ(s->trials(st->id, {TrialState::kPruned}).at(0).number, 1);
    EXPECT_EQ(s->trials(st->id, {TrialState::kComplete}).at(0).number, 0);
  }
  EXPECT_EQ(schema_of(backend, target), before) << "opening must not change an existing schema";
}

TEST_P(SqlSchemaTest, FreshDatabaseGetsTheSchemaEarlierKilnsWrote) {
  const Backend backend = GetParam();
  const auto [old_target, old_url] = fresh("earlier");
  raw_sql(backend, old_target, backend == Backend::kSqlite ? kSqliteSchemaV1 : kPostgresSchemaV1);
  const auto [new_target, new_url] = fresh("now");
  (void)open_storage(new_url);
  const std::string schema = schema_of(backend, new_target);
  EXPECT_TRUE(Contains(schema, "trials_study_state"));
  EXPECT_EQ(schema, schema_of(backend, old_target));
}

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgres";
}

INSTANTIATE_TEST_SUITE_P(Sqlite, SqlSchemaTest, ::testing::Values(Backend::kSqlite), backend_name);
INSTANTIATE_TEST_SUITE_P(Postgres, SqlSchemaTest, ::testing::Values(Backend::kPostgres), backend_name);

}  // namespace
}  // namespace kiln::tune
