// The connection interface the one SQL study storage (sql_storage.h) runs on, and its two
// implementations: SQLite (sqlite_connection.cpp) and PostgreSQL (postgres_connection.cpp).
// The storage's SQL is written once; a connection binds parameters, runs transactions and
// supplies the few pieces of SQL that differ (SqlDialect).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/tune/storage.h"

namespace kiln::tune {

/// A bound parameter or a result cell: NULL, integer, double or text.
using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;
using SqlParams = std::vector<SqlValue>;

/// The rows a statement returned. Cells convert on reading (PostgreSQL returns text, SQLite
/// typed values); NULL reads as 0 or "" (check null() first where NULL means something).
class SqlRows {
 public:
  explicit SqlRows(int columns = 0) : columns_(columns) {}
  /// Appends the next cell, row by row (no argument: NULL).
  template <class... T>
  void add(T&&... v) {
    cells_.emplace_back(std::forward<T>(v)...);
  }
  [[nodiscard]] int size() const { return columns_ ? static_cast<int>(cells_.size()) / columns_ : 0; }
  [[nodiscard]] bool empty() const { return cells_.empty(); }
  [[nodiscard]] bool null(int row, int col) const { return std::holds_alternative<std::monostate>(at(row, col)); }
  [[nodiscard]] int64_t i64(int row, int col) const;
  [[nodiscard]] double f64(int row, int col) const;
  [[nodiscard]] std::optional<double> opt(int row, int col) const {
    return null(row, col) ? std::nullopt : std::optional<double>(f64(row, col));
  }
  [[nodiscard]] std::string text(int row, int col) const;

 private:
  [[nodiscard]] const SqlValue& at(int row, int col) const { return cells_[static_cast<std::size_t>(row * columns_ + col)]; }
  int columns_;
  std::vector<SqlValue> cells_;
};

/// The connection was lost (or the server ended the session) before COMMIT: the server rolled the
/// transaction back; the storage reconnects and runs it again once.
struct SqlConnectionLost : IoError {
  using IoError::IoError;
};
/// Deadlock or serialization failure: the storage rolls back and runs the transaction again.
struct SqlConflict : IoError {
  using IoError::IoError;
};

/// The SQL that differs between databases, as text the storage splices into its own.
struct SqlDialect {
  /// Column types of the schema (persisted: never change for an existing schema version).
  const char* id_column;  ///< autoincrementing primary key
  const char* int64_type;
  const char* int16_type;
  const char* real_type;
  /// Appended to a SELECT that must lock its row until COMMIT ("" where BEGIN already locks).
  const char* for_update;
  /// One row, two 0/1 columns: kiln_schema_version exists; studies or trials exists.
  const char* probe_tables;
  /// Run first in the schema transaction to serialize concurrent creators, or nullptr.
  const char* schema_lock;
  /// How the schema-version messages end (what to do about a newer or a foreign database).
  const char* newer_schema_fix;
  const char* foreign_schema_fix;
};

/// One database session. Not thread-safe: SqlStorage serializes calls under its mutex.
class SqlConnection {
 public:
  enum class Access { kRead, kWrite };
  virtual ~SqlConnection() = default;

  [[nodiscard]] virtual const SqlDialect& dialect() const = 0;
  /// How messages name the database: the URL as given, password masked.
  [[nodiscard]] virtual const std::string& display() const = 0;
  /// Starts a transaction, reconnecting first when the connection dropped. kWrite takes the write
  /// lock at once where the database has one (SQLite: BEGIN IMMEDIATE); kRead reads one snapshot.
  virtual void begin(Access access) = 0;
  virtual void commit() = 0;
  /// Rolls back an open transaction, if any; never throws.
  virtual void rollback() noexcept = 0;
  /// Runs one statement with `params` bound to $1..$n and returns its rows. `{now}` in `sql` is
  /// the database's clock in Unix seconds, read once per statement (PostgreSQL: the server's;
  /// SQLite: this machine's). Throws IoError naming the database and the fix, SqlConnectionLost
  /// or SqlConflict.
  virtual SqlRows query(const std::string& sql, const SqlParams& params = {}) = 0;
  /// Runs several statements without parameters (the schema).
  virtual void execute_script(const std::string& sql) = 0;
};

/// SQLite: `path` a file (created when absent) or ":memory:"; `display` names it in messages.
/// WAL journal, synchronous=NORMAL, writers wait up to options.busy_timeout_seconds for the lock.
/// Throws IoError when it cannot be opened or is not a SQLite database.
[[nodiscard]] std::unique_ptr<SqlConnection> open_sqlite_connection(const std::string& path, const std::string& display,
                                                                    const StorageOptions& options);
/// PostgreSQL: `url` a libpq URI. Throws IoError (URL password masked) when it cannot connect.
[[nodiscard]] std::unique_ptr<SqlConnection> open_postgres_connection(const std::string& url,
                                                                      const StorageOptions& options);

}  // namespace kiln::tune
