// SqlConnection on a PostgreSQL database: one study shared by workers on many machines.
#include <dlfcn.h>
#include <libpq-fe.h>

#include <cmath>
#include <string>
#include <utility>

#include "sql_connection.h"
#include "storage.h"

namespace kiln::tune {

using namespace storage_detail;

namespace {

const SqlDialect kPostgresDialect{
    /*id_column=*/"BIGSERIAL PRIMARY KEY", /*int64_type=*/"BIGINT", /*int16_type=*/"SMALLINT",
    /*real_type=*/"DOUBLE PRECISION", /*for_update=*/" FOR UPDATE",
    /*probe_tables=*/"SELECT (to_regclass('kiln_schema_version') IS NOT NULL)::int, "
    "(to_regclass('studies') IS NOT NULL OR to_regclass('trials') IS NOT NULL)::int",
    // Serializes schema creation between workers that start together (the key is Kiln's own).
    /*schema_lock=*/"SELECT pg_advisory_xact_lock(7305451294)",
    /*newer_schema_fix=*/"upgrade Kiln on this worker, or use another database",
    /*foreign_schema_fix=*/"create a separate database for Kiln"};

/// The server's clock for `{now}`: one value per statement.
const char* const kNow = "extract(epoch from statement_timestamp())::float8";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

/// libpq, loaded when the first PostgreSQL storage opens rather than linked: linking it (with its
/// Kerberos, LDAP and TLS libraries) added about 6 ms to the start of every `kiln` command, most of
/// which never touch PostgreSQL. The members are libpq's own functions, by name.
struct Libpq {
#define KILN_LIBPQ_FUNCTIONS(X)                                                                              \
  X(PQclear) X(PQconnectdbParams) X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQfinish) X(PQgetisnull)     \
  X(PQgetlength) X(PQgetvalue) X(PQnfields) X(PQntuples) X(PQreset) X(PQresultErrorField)                    \
  X(PQresultErrorMessage) X(PQresultStatus) X(PQstatus) X(PQtransactionStatus)
#define KILN_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_LIBPQ_FUNCTIONS(KILN_LIBPQ_MEMBER)
#undef KILN_LIBPQ_MEMBER
};

/// The library's soname: libpq's ABI has been libpq.so.5 since PostgreSQL 8.2.
constexpr const char* kLibpqSoname = "libpq.so.5";

Libpq load_libpq() {
  void* handle = ::dlopen(kLibpqSoname, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = ::dlerror();
    throw IoError(std::string("PostgreSQL storage needs libpq, and ") + kLibpqSoname + " could not be loaded (" +
                  (why ? why : "unknown error") + "); install it (apt-get install libpq5) or use a sqlite:/// storage");
  }
  Libpq lib;
#define KILN_LIBPQ_LOAD(name)                                                                                 \
  lib.name = reinterpret_cast<decltype(&::name)>(::dlsym(handle, #name));                                    \
  if (!lib.name) {                                                                                            \
    throw IoError(std::string(kLibpqSoname) + " has no " #name "; it is not a libpq Kiln can use (reinstall " \
                  "libpq5)");                                                                                 \
  }
  KILN_LIBPQ_FUNCTIONS(KILN_LIBPQ_LOAD)
#undef KILN_LIBPQ_LOAD
  return lib;  // the handle stays open for the process's life
}

/// libpq's functions, loaded on first use (thread-safe); throws IoError when libpq is missing.
const Libpq& pq() {
  static const Libpq lib = load_libpq();
  return lib;
}

/// An owned PGresult.
struct Result {
  explicit Result(PGresult* r) : r(r) {}
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() {
    if (r) pq().PQclear(r);
  }
  PGresult* r;
};

/// Values travel as text parameters of PQexecParams (the server infers their types), never spliced
/// into SQL. A dropped connection is re-established by the next begin().
class PostgresConnection final : public SqlConnection {
 public:
  PostgresConnection(const std::string& url, const StorageOptions& options)
      : url_(url), display_(mask_url_password(url)), options_(options) {
    connect();
  }
  ~PostgresConnection() override {
    if (conn_) pq().PQfinish(conn_);
  }
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;

  const SqlDialect& dialect() const override { return kPostgresDialect; }
  const std::string& display() const override { return display_; }

  void begin(Access access) override {
    if (!conn_) {
      connect();
    } else if (pq().PQstatus(conn_) != CONNECTION_OK) {
      pq().PQreset(conn_);
      if (pq().PQstatus(conn_) != CONNECTION_OK) {
        throw IoError("lost the connection to PostgreSQL at " + display_ + " and could not reconnect: " +
                      trimmed(pq().PQerrorMessage(conn_)) + "; check that the server is up and reachable");
      }
      query("SET extra_float_digits = 3");
    } else if (pq().PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      rollback();
    }
    query(access == Access::kRead ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
  }
  void commit() override { query("COMMIT"); }
  void rollback() noexcept override {
    if (conn_ && pq().PQstatus(conn_) == CONNECTION_OK) pq().PQclear(pq().PQexec(conn_, "ROLLBACK"));
  }

  SqlRows query(const std::string& sql, const SqlParams& params = {}) override {
    std::string text = sql;
    for (auto pos = text.find("{now}"); pos != std::string::npos; pos = text.find("{now}", pos)) {
      text.replace(pos, 5, kNow);
    }
    std::vector<std::string> strings(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (std::size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      if (const auto* n = std::get_if<int64_t>(&v)) strings[i] = std::to_string(*n);
      else if (const auto* d = std::get_if<double>(&v)) strings[i] = format_double(*d);
      else if (const auto* s = std::get_if<std::string>(&v)) strings[i] = *s;
      else continue;  // NULL
      values[i] = strings[i].c_str();
    }
    const Result res(
        pq().PQexecParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
    const auto status = res.r ? pq().PQresultStatus(res.r) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) failed(res.r, text);
    const int columns = pq().PQnfields(res.r);
    SqlRows rows(columns);
    for (int r = 0; r < pq().PQntuples(res.r); ++r) {
      for (int c = 0; c < columns; ++c) {
        if (pq().PQgetisnull(res.r, r, c)) rows.add();
        else rows.add(std::string(pq().PQgetvalue(res.r, r, c), static_cast<std::size_t>(pq().PQgetlength(res.r, r, c))));
      }
    }
    return rows;
  }

  void execute_script(const std::string& sql) override {
    const Result created(pq().PQexec(conn_, sql.c_str()));
    if (pq().PQresultStatus(created.r) != PGRES_COMMAND_OK) {
      const std::string msg = trimmed(pq().PQresultErrorMessage(created.r));
      if (pq().PQstatus(conn_) != CONNECTION_OK) throw SqlConnectionLost(msg);
      throw IoError(display_ + ": creating Kiln's tables failed: " + msg +
                    "; the database user needs the CREATE privilege on the schema");
    }
  }

 private:
  void connect() {
    const std::string timeout = std::to_string(static_cast<int>(std::ceil(options_.connect_timeout_seconds)));
    // Entries before `dbname` (the expanded URL) yield to the URL's own settings.
    const char* const keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* const values[] = {timeout.c_str(), "kiln", url_.c_str(), nullptr};
    if (conn_) pq().PQfinish(conn_);
    conn_ = pq().PQconnectdbParams(keywords, values, 1);
    if (!conn_ || pq().PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = conn_ ? trimmed(pq().PQerrorMessage(conn_)) : "out of memory";
      if (conn_) pq().PQfinish(conn_);
      conn_ = nullptr;
      throw IoError("cannot connect to PostgreSQL at " + display_ + ": " + why +
                    "; check that the server is running and accepts TCP connections on that host and port, and that "
                    "the user, password and database in the URL are right (try the URL with psql)");
    }
    // Shortest-exact float output, whatever the server's default.
    query("SET extra_float_digits = 3");
  }

  /// Throws for a failed statement: SqlConnectionLost, SqlConflict, or IoError naming the statement.
  [[noreturn]] void failed(const PGresult* res, const std::string& sql) {
    const std::string msg = trimmed(res ? pq().PQresultErrorMessage(res) : pq().PQerrorMessage(conn_));
    const char* state = res ? pq().PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const std::string code = state ? state : "";
    if (pq().PQstatus(conn_) != CONNECTION_OK || code.rfind("08", 0) == 0 || code.rfind("57P0", 0) == 0) {
      throw SqlConnectionLost(msg.empty() ? "connection lost" : msg);
    }
    if (code == "40001" || code == "40P01") throw SqlConflict(msg);
    std::string what = sql;
    if (what.size() > 80) what = what.substr(0, 77) + "...";
    throw IoError(display_ + ": `" + trimmed(what) + "` failed: " + msg + (code.empty() ? "" : " (SQLSTATE " + code + ")") +
                  "; check the server log and that the database user may read and write Kiln's tables");
  }

  PGconn* conn_ = nullptr;
  std::string url_;
  std::string display_;  // url_ with the password masked
  StorageOptions options_;
};

}  // namespace

std::unique_ptr<SqlConnection> open_postgres_connection(const std::string& url, const StorageOptions& options) {
  return std::make_unique<PostgresConnection>(url, options);
}

}  // namespace kiln::tune
