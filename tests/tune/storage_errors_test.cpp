// Study-storage errors: URLs, SQLite files that are not studies or are locked, PostgreSQL
// connections that fail or drop.
#include "kiln/tune/storage.h"

#include "tune/storage_test_util.h"

namespace kiln::tune {
namespace {

using namespace storage_testing;

// --- URLs and options -----------------------------------------------------------------------

TEST(StorageUrl, UnknownSchemeListsAcceptedFormsWithoutPassword) {
  const std::string msg = error_of([] { (void)open_storage("mysql://kiln:hunter2@db.example/study"); });
  EXPECT_TRUE(Contains(msg, "storage URL 'mysql://kiln:***@db.example/study' has unknown scheme 'mysql'; use "
                             "sqlite:///relative/path.db, sqlite:////absolute/path.db, a plain file path, or "
                             "postgresql://user:password@host:port/database"));
  EXPECT_TRUE(Lacks(msg, "hunter2"));
  EXPECT_THROW((void)open_storage("mysql://x/y"), ConfigError);
  EXPECT_TRUE(Contains(error_of([] { (void)open_storage("postgresql+psycopg2://u@h/db"); }),
              "drop the SQLAlchemy driver suffix `+psycopg2`"));
  EXPECT_TRUE(Contains(error_of([] { (void)open_storage("sqlite://"); }), "storage URL 'sqlite://' names no file"));
  EXPECT_TRUE(Contains(error_of([] { (void)open_storage(""); }), "storage URL is empty"));
}

TEST(StorageUrl, MasksPasswords) {
  EXPECT_EQ(mask_url_password("postgresql://u:p%40ss@h:5432/db"), "postgresql://u:***@h:5432/db");
  EXPECT_EQ(mask_url_password("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(mask_url_password("postgresql://h/db?user=u&password=secret&sslmode=require"),
            "postgresql://h/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(mask_url_password("sqlite:////tmp/a:b@c.db"), "sqlite:////tmp/a:b@c.db");
}

TEST(StorageUrl, ValidatesOptions) {
  StorageOptions o;
  o.busy_timeout_seconds = -1;
  EXPECT_TRUE(Contains(error_of([&] { (void)open_storage(":memory:", o); }),
              "storage.busy_timeout_seconds must be in [0, 86400], got -1"));
  o = {};
  o.connect_timeout_seconds = 0;
  EXPECT_THROW((void)open_storage(":memory:", o), ConfigError);
}

TEST(StorageUrl, UnreachablePostgresNamesUrlWithoutPasswordAndFix) {
  const std::string url = "postgresql://kiln:hunter2@127.0.0.1:" + std::to_string(free_port()) + "/study";
  const std::string msg = error_of([&] { (void)open_storage(url); });
  EXPECT_TRUE(Contains(msg, "cannot connect to PostgreSQL at " + mask_url_password(url) + ": "));
  EXPECT_TRUE(Contains(msg, "Connection refused"));
  EXPECT_TRUE(Contains(msg, "check that the server is running and accepts TCP connections"));
  EXPECT_TRUE(Lacks(msg, "hunter2"));
  EXPECT_THROW((void)open_storage(url), IoError);
}

// --- SQLite files ---------------------------------------------------------------------------

TEST(SqliteStorage, NonSqliteFileIsClearError) {
  TempDir dir;
  const auto path = (dir.path / "notes.db").string();
  std::ofstream(path) << std::string(4096, 'x');
  const std::string msg = error_of([&] { (void)open_storage(path); });
  EXPECT_TRUE(Contains(msg, path + ": "));
  EXPECT_TRUE(Contains(msg, "the file is not a SQLite database or is corrupt; point the storage at a Kiln study database"));
  EXPECT_THROW((void)open_storage(path), IoError);
}

TEST(SqliteStorage, ForeignDatabaseIsRefused) {
  TempDir dir;
  const auto path = (dir.path / "optuna.db").string();
  raw_sql(Backend::kSqlite, path, "CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)");
  EXPECT_TRUE(Contains(error_of([&] { (void)open_storage("sqlite:///" + path); }),
              "no kiln_schema_version: not a Kiln study database (an Optuna one?)"));
}

TEST(SqliteStorage, MissingDirectoryNamesTheFix) {
  const std::string msg = error_of([] { (void)open_storage("sqlite:////nonexistent-kiln-dir/study.db"); });
  EXPECT_TRUE(Contains(msg, "sqlite:////nonexistent-kiln-dir/study.db: opening the database file"));
  EXPECT_TRUE(Contains(msg, "check that the directory exists"));
}

TEST(SqliteStorage, LockHeldTooLongNamesTheOption) {
  TempDir dir;
  const auto path = (dir.path / "study.db").string();
  StorageOptions o;
  o.busy_timeout_seconds = 0.2;
  auto s = open_storage(path, o);
  const auto st = s->create_or_load_study("locked", Direction::kMinimize);
  sqlite3* holder = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &holder), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const std::string msg = error_of([&] { (void)s->create_trial(st.id, {}, {}); });
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  EXPECT_TRUE(Contains(msg, "held the database lock for longer than storage.busy_timeout_seconds (0.2 s); raise it"));
  EXPECT_EQ(s->create_trial(st.id, {}, {}).number, 0) << "the failed attempt took no number";
}

/// Holds a write lock (RESERVED) on a fresh SQLite file from a second connection, the state another
/// process is in while it creates the schema; releases it after `hold`.
class FreshFileLockHolder {
 public:
  FreshFileLockHolder(const std::string& path, std::chrono::milliseconds hold) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    release_ = std::thread([this, hold] {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, hold, [this] { return stop_; });
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    });
  }
  ~FreshFileLockHolder() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    release_.join();
    sqlite3_close(db_);
  }

 private:
  sqlite3* db_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread release_;
};

// The race behind ConcurrentProcessesGetUniqueGapFreeNumbers' rare failures, made deterministic: switching
// a fresh file to WAL while another connection holds its write lock returns SQLITE_BUSY at once (SQLite
// skips the busy handler where waiting could deadlock). Opening must wait for the lock like any write.
TEST(SqliteStorage, FreshFileWaitsForAnotherConnectionSwitchingJournalMode) {
  TempDir dir;
  const auto path = (dir.path / "fresh.db").string();
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Storage> s;
  {
    FreshFileLockHolder holder(path, std::chrono::milliseconds(300));
    s = open_storage(path);  // throws "database is locked" without the fix
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300)) << "it waited for the lock";
  const auto st = s->create_or_load_study("fresh", Direction::kMinimize);
  EXPECT_EQ(s->create_trial(st.id, {}, {}).number, 0);
  sqlite3* check = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &check), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(check, "PRAGMA journal_mode", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "wal");
  sqlite3_finalize(q);
  sqlite3_close(check);
}

// When the lock is held past the timeout, the message says so only after that much time has passed.
TEST(SqliteStorage, FreshFileLockedPastTimeoutNamesTheOptionAfterWaiting) {
  TempDir dir;
  const auto path = (dir.path / "fresh.db").string();
  StorageOptions o;
  o.busy_timeout_seconds = 0.3;
  FreshFileLockHolder holder(path, std::chrono::seconds(30));
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = error_of([&] { (void)open_storage(path, o); });
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_TRUE(Contains(msg, path + ": switching to write-ahead logging: "));
  EXPECT_TRUE(Contains(msg, "held the database lock for longer than storage.busy_timeout_seconds (0.3 s); raise it"));
}

TEST(SqliteStorage, InMemoryDatabaseWorks) {
  auto s = open_storage("sqlite:///:memory:");
  const auto st = s->create_or_load_study("m", Direction::kMaximize);
  EXPECT_EQ(s->create_trial(st.id, {}, {}).number, 0);
  EXPECT_EQ(s->trials(st.id).size(), 1u);
}

// --- PostgreSQL connections -----------------------------------------------------------------

TEST(PostgresStorage, WrongPasswordIsIoErrorWithMaskedUrl) {
  const std::string url = postgres_url();
  if (url.empty()) GTEST_SKIP() << kHowToRunPostgres;
  const auto at = url.find('@');
  const auto colon = url.rfind(':', at);
  const std::string bad = url.substr(0, colon + 1) + "wrong-password" + url.substr(at);
  const std::string msg = error_of([&] { (void)open_storage(bad); });
  EXPECT_TRUE(Contains(msg, "cannot connect to PostgreSQL at " + mask_url_password(bad)));
  EXPECT_TRUE(Contains(msg, "password authentication failed"));
  EXPECT_TRUE(Lacks(msg, "wrong-password"));
}

TEST(PostgresStorage, ReconnectsAfterDroppedConnection) {
  const std::string url = postgres_url();
  if (url.empty()) GTEST_SKIP() << kHowToRunPostgres;
  auto s = open_storage(url);
  const auto st = s->create_or_load_study("dropped-" + unique_suffix(), Direction::kMinimize);
  const Trial t = s->create_trial(st.id, {}, {});
  // The server ends every Kiln session (as on a restart or a network cut).
  raw_sql(Backend::kPostgres, url,
          "WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
          "WHERE application_name = 'kiln' AND pid <> pg_backend_pid()) "
          "SELECT 1 / count(*) FROM victims WHERE pg_terminate_backend(pid)");  // fails when none was ended
  s->report(t.id, 0, 0.5);  // reconnects and retries
  EXPECT_TRUE(s->finish_trial(t.id, TrialState::kComplete, 0.5));
  EXPECT_EQ(s->create_trial(st.id, {}, {}).number, 1);
  EXPECT_EQ(s->trial(t.id).intermediate.at(0), 0.5);
}

}  // namespace
}  // namespace kiln::tune
