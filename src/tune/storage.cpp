#include "kiln/tune/storage.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "sql_storage.h"
#include "storage.h"

namespace kiln::tune {

namespace storage_detail {

double now_unix_seconds() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return static_cast<double>(us.count()) / 1e6;
}

std::string format_double(double v) {
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace storage_detail

void StorageOptions::validate() const {
  if (!(busy_timeout_seconds >= 0) || busy_timeout_seconds > 86400) {
    throw ConfigError("storage.busy_timeout_seconds must be in [0, 86400], got " +
                      storage_detail::format_double(busy_timeout_seconds));
  }
  if (!(connect_timeout_seconds >= 1) || connect_timeout_seconds > 86400) {
    throw ConfigError("storage.connect_timeout_seconds must be in [1, 86400] (libpq counts whole seconds), got " +
                      storage_detail::format_double(connect_timeout_seconds));
  }
}

std::string mask_url_password(const std::string& url) {
  std::string out = url;
  const auto scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    const auto auth_begin = scheme_end + 3;
    const auto auth_end = out.find_first_of("/?#", auth_begin);
    const auto at = out.rfind('@', auth_end == std::string::npos ? std::string::npos : auth_end);
    if (at != std::string::npos && at >= auth_begin) {
      const auto colon = out.find(':', auth_begin);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // `password=` as a query option (postgresql://host/db?password=x) or a key=value conninfo string.
  for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const auto value = pos + 9;
    const auto end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value, "***");
    pos = value + 3;
  }
  return out;
}

namespace {

const char* const kAcceptedForms =
    "use sqlite:///relative/path.db, sqlite:////absolute/path.db, a plain file path, or "
    "postgresql://user:password@host:port/database (postgres:// also works)";

}  // namespace

std::unique_ptr<Storage> open_storage(const std::string& url, const StorageOptions& options) {
  options.validate();
  if (url.empty()) throw ConfigError(std::string("storage URL is empty; ") + kAcceptedForms);
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::make_unique<SqlStorage>(open_sqlite_connection(url, url, options));
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme == "sqlite") {
    const std::string rest = url.substr(scheme_end + 3);
    if (rest.empty() || rest[0] != '/' || rest.size() == 1) {
      throw ConfigError("storage URL '" + url + "' names no file: " + kAcceptedForms);
    }
    return std::make_unique<SqlStorage>(open_sqlite_connection(rest.substr(1), url, options));
  }
  if (scheme == "postgresql" || scheme == "postgres") {
    return std::make_unique<SqlStorage>(open_postgres_connection(url, options));
  }
  std::string hint;
  if (scheme.rfind("postgresql+", 0) == 0 || scheme.rfind("sqlite+", 0) == 0) {
    hint = " (drop the SQLAlchemy driver suffix `" + scheme.substr(scheme.find('+')) + "`)";
  }
  throw ConfigError("storage URL '" + mask_url_password(url) + "' has unknown scheme '" + scheme + "'" + hint + "; " +
                    kAcceptedForms);
}

}  // namespace kiln::tune
