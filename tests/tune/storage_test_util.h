// Helpers shared by the study-storage tests (storage_test.cpp, storage_errors_test.cpp).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "kiln/tune/storage.h"

namespace kiln::tune::storage_testing {

namespace fs = std::filesystem;

enum class Backend { kSqlite, kPostgres };

inline void PrintTo(Backend b, std::ostream* os) { *os << (b == Backend::kSqlite ? "sqlite" : "postgres"); }

const char* const kHowToRunPostgres =
    "KILN_TEST_POSTGRES_URL is unset: run the PostgreSQL cases with `ctest -R tune.postgres_storage`, or "
    "tests/tune/with_postgres.sh build/tests/kiln_tune_tests --gtest_filter='Postgres*'";

inline std::string postgres_url() {
  const char* u = std::getenv("KILN_TEST_POSTGRES_URL");
  return u ? u : "";
}

inline std::string unique_suffix() {
  static std::atomic<int> counter{0};
  return std::to_string(getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + "-" + std::to_string(counter++);
}

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("kiln-storage-test-" + unique_suffix());
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// Runs SQL on the database behind the test's storage, outside Kiln (to tamper with it).
inline void raw_sql(Backend backend, const std::string& target, const std::string& sql) {
  if (backend == Backend::kSqlite) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(target.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
    return;
  }
  PGconn* conn = PQconnectdb(target.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  PGresult* r = PQexec(conn, sql.c_str());
  const auto status = PQresultStatus(r);
  const std::string msg = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  ASSERT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) << msg;
}

/// The password in a `scheme://user:password@host` URL.
inline std::string password_of(const std::string& url) {
  const auto at = url.find('@');
  const auto colon = url.rfind(':', at);
  return url.substr(colon + 1, at - colon - 1);
}

/// A TCP port on 127.0.0.1 where nothing listens (bound, then released).
inline int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected to find\n  " << part << "\nin\n  " << text;
}

inline ::testing::AssertionResult Lacks(const std::string& text, const std::string& part) {
  if (text.find(part) == std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected no\n  " << part << "\nin\n  " << text;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace kiln::tune::storage_testing
