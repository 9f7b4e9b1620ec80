#include "kiln/tune/storage.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "postgres_storage.h"
#include "sqlite_storage.h"
#include "storage.h"

namespace kiln::tune {

namespace storage_detail {

ValueType value_type_of(double v) {
  if (std::isnan(v)) return ValueType::kNan;
  if (std::isinf(v)) return v > 0 ? ValueType::kPositiveInfinity : ValueType::kNegativeInfinity;
  return ValueType::kFinite;
}

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

StoredDistributions stored_distributions(const std::map<std::string, double>& params,
                                         const std::map<std::string, Distribution>& distributions) {
  StoredDistributions out;
  for (const auto& [name, value] : params) {
    out.used[name] = distributions.at(name);
    out.json[name] = out.used[name].to_json().dump();
  }
  return out;
}

void require_running_for_report(const std::string& display, int64_t trial_id, int64_t step, int64_t state) {
  if (state != static_cast<int64_t>(TrialState::kRunning)) {
    throw TrialNotRunningError(display + ": report(step " + std::to_string(step) + ") on trial id " +
                               std::to_string(trial_id) + ", which is " + to_string(static_cast<TrialState>(state)) +
                               ", not running; it was finished, or failed as stale by another worker (see its "
                               "fail_reason attribute): stop the trial");
  }
}

void validate_finish_state(const std::string& display, int64_t trial_id, TrialState state) {
  if (state == TrialState::kRunning) {
    throw ConfigError(display + ": finish_trial(trial id " + std::to_string(trial_id) +
                      ") with state running; pass complete, pruned or failed");
  }
}

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

std::string stale_reason(double timeout_seconds) {
  return "no heartbeat for more than " + format_double(timeout_seconds) +
         " s: the worker running this trial stopped (crashed, was killed or lost its connection)";
}

void validate_stale_timeout(double timeout_seconds) {
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds)) {
    throw ConfigError("fail_stale_trials: timeout_seconds must be a finite number > 0, got " + format_double(timeout_seconds));
  }
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
  if (scheme_end == std::string::npos) return std::make_unique<SqliteStorage>(url, url, options);
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme == "sqlite") {
    const std::string rest = url.substr(scheme_end + 3);
    if (rest.empty() || rest[0] != '/' || rest.size() == 1) {
      throw ConfigError("storage URL '" + url + "' names no file: " + kAcceptedForms);
    }
    return std::make_unique<SqliteStorage>(rest.substr(1), url, options);
  }
  if (scheme == "postgresql" || scheme == "postgres") return std::make_unique<PostgresStorage>(url, options);
  std::string hint;
  if (scheme.rfind("postgresql+", 0) == 0 || scheme.rfind("sqlite+", 0) == 0) {
    hint = " (drop the SQLAlchemy driver suffix `" + scheme.substr(scheme.find('+')) + "`)";
  }
  throw ConfigError("storage URL '" + mask_url_password(url) + "' has unknown scheme '" + scheme + "'" + hint + "; " +
                    kAcceptedForms);
}

}  // namespace kiln::tune
