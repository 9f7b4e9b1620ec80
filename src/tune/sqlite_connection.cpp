// SqlConnection on one SQLite database file: no server, shared by the processes of one machine.
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "sql_connection.h"
#include "storage.h"

namespace kiln::tune {

using namespace storage_detail;

namespace {

const SqlDialect kSqliteDialect{
    /*id_column=*/"INTEGER PRIMARY KEY AUTOINCREMENT", /*int64_type=*/"INTEGER", /*int16_type=*/"INTEGER",
    /*real_type=*/"REAL", /*for_update=*/"",  // BEGIN IMMEDIATE holds the write lock
    /*probe_tables=*/"SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kiln_schema_version'), "
    "EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('studies', 'trials'))",
    /*schema_lock=*/nullptr,  // BEGIN IMMEDIATE already serializes schema creation
    /*newer_schema_fix=*/"upgrade Kiln, or use another database file", /*foreign_schema_fix=*/"use a new file for Kiln"};

/// `sql` with $N written ?N (SQLite numbers `$1` by first appearance, not by its digits) and
/// `{now}` as the parameter after the last one; sets `now_index` to that number (0: no `{now}`).
std::string to_sqlite(const std::string& sql, int& now_index) {
  std::string out = sql;
  int last = 0;
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] == '$' && std::isdigit(static_cast<unsigned char>(out[i + 1]))) {
      out[i] = '?';
      last = std::max(last, std::atoi(out.c_str() + i + 1));
    }
  }
  now_index = out.find("{now}") == std::string::npos ? 0 : last + 1;
  for (auto pos = out.find("{now}"); pos != std::string::npos; pos = out.find("{now}", pos)) {
    out.replace(pos, 5, "?" + std::to_string(now_index));
  }
  return out;
}

/// Thread-compatible; SqlStorage serializes calls. Writes run in `BEGIN IMMEDIATE` transactions and
/// wait up to StorageOptions::busy_timeout_seconds for each other. Do not fork() while one is open
/// and use the database in the child (SQLite's rule); open a new one there after closing this one.
class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(const std::string& path, const std::string& display, const StorageOptions& options)
      : display_(display), options_(options) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    try {
      if (rc != SQLITE_OK) fail(rc, "opening the database file");
      sqlite3_busy_timeout(db_, static_cast<int>(std::lround(options.busy_timeout_seconds * 1000)));
      exec("PRAGMA foreign_keys = ON");
      if (path != ":memory:") switch_to_wal();
      exec("PRAGMA synchronous = NORMAL");
    } catch (...) {
      close();
      throw;
    }
  }
  ~SqliteConnection() override { close(); }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  const SqlDialect& dialect() const override { return kSqliteDialect; }
  const std::string& display() const override { return display_; }
  void begin(Access access) override { exec(access == Access::kWrite ? "BEGIN IMMEDIATE" : "BEGIN"); }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void execute_script(const std::string& sql) override { exec(sql.c_str()); }

  SqlRows query(const std::string& sql, const SqlParams& params = {}) override {
    const Prepared& p = prepare(sql);
    struct Reset {  // leaves the cached statement ready for its next use, however this returns
      sqlite3_stmt* st;
      ~Reset() {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
      }
    } reset{p.st};
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int at = static_cast<int>(i + 1);
      const SqlValue& v = params[i];
      int rc = SQLITE_OK;
      if (const auto* n = std::get_if<int64_t>(&v)) rc = sqlite3_bind_int64(p.st, at, *n);
      else if (const auto* d = std::get_if<double>(&v)) rc = sqlite3_bind_double(p.st, at, *d);
      else if (const auto* s = std::get_if<std::string>(&v))
        rc = sqlite3_bind_text(p.st, at, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      else rc = sqlite3_bind_null(p.st, at);
      if (rc != SQLITE_OK) fail(rc, "binding a parameter");
    }
    if (p.now_index > 0) sqlite3_bind_double(p.st, p.now_index, now_unix_seconds());
    const int columns = sqlite3_column_count(p.st);
    SqlRows rows(columns);
    for (;;) {
      const int rc = sqlite3_step(p.st);
      if (rc == SQLITE_DONE) return rows;
      if (rc != SQLITE_ROW) fail(rc, std::string("running `") + sqlite3_sql(p.st) + "`");
      for (int c = 0; c < columns; ++c) {
        switch (sqlite3_column_type(p.st, c)) {
          case SQLITE_NULL: rows.add(); break;
          case SQLITE_INTEGER: rows.add(static_cast<int64_t>(sqlite3_column_int64(p.st, c))); break;
          case SQLITE_FLOAT: rows.add(sqlite3_column_double(p.st, c)); break;
          default:
            rows.add(std::string(reinterpret_cast<const char*>(sqlite3_column_text(p.st, c)),
                                 static_cast<std::size_t>(sqlite3_column_bytes(p.st, c))));
        }
      }
    }
  }

 private:
  struct Prepared {
    sqlite3_stmt* st;
    int now_index;  // the parameter bound to the clock, 0 when none
  };

  /// The cached prepared statement for `sql`.
  const Prepared& prepare(const std::string& sql) {
    const auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    Prepared p{nullptr, 0};
    const std::string text = to_sqlite(sql, p.now_index);
    const int rc = sqlite3_prepare_v2(db_, text.c_str(), -1, &p.st, nullptr);
    if (rc != SQLITE_OK) fail(rc, "preparing `" + text + "`");
    return statements_.emplace(sql, p).first->second;
  }

  void exec(const char* sql) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, std::string("running `") + (std::strlen(sql) > 60 ? "schema SQL" : sql) + "`");
  }

  void switch_to_wal() {
    // Switching the journal mode takes the write lock while this connection already reads the file. When
    // another connection holds that lock (creating the schema of a fresh file), SQLite returns SQLITE_BUSY
    // at once instead of calling the busy handler, since waiting there could deadlock. Nothing is held
    // here between attempts, so retrying until storage.busy_timeout_seconds is safe.
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(options_.busy_timeout_seconds));
    auto pause = std::chrono::microseconds(500);
    sqlite3_stmt* st = prepare("PRAGMA journal_mode = WAL").st;
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

  [[noreturn]] void fail(int rc, const std::string& doing) {
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

  void close() noexcept {
    for (auto& [sql, p] : statements_) sqlite3_finalize(p.st);
    statements_.clear();
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }

  sqlite3* db_ = nullptr;
  std::string display_;
  StorageOptions options_;
  std::unordered_map<std::string, Prepared> statements_;
};

}  // namespace

std::unique_ptr<SqlConnection> open_sqlite_connection(const std::string& path, const std::string& display,
                                                      const StorageOptions& options) {
  return std::make_unique<SqliteConnection>(path, display, options);
}

}  // namespace kiln::tune
