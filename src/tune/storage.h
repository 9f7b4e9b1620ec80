// Private helpers shared by the SQLite and PostgreSQL study storages (sqlite_storage.cpp,
// postgres_storage.cpp). The public interface is kiln/tune/storage.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "kiln/tune/study.h"

namespace kiln::tune::storage_detail {

/// The schema version this build writes and reads (table kiln_schema_version, one row).
/// Bump it only together with a migration from every older version; a newer one is refused.
inline constexpr int kSchemaVersion = 1;

/// How a stored double is encoded next to its column (SQLite turns NaN into NULL, PostgreSQL keeps
/// it; storing non-finite values as NULL plus this tag makes both agree). Persisted: never renumber.
enum class ValueType { kFinite = 0, kPositiveInfinity = 1, kNegativeInfinity = 2, kNan = 3 };

[[nodiscard]] ValueType value_type_of(double v);
/// The double a stored (value, type) pair stands for. Throws IoError naming `where` for an unknown type.
[[nodiscard]] double decode_value(std::optional<double> stored, int64_t type, const std::string& where);

/// Current time, Unix seconds (UTC), microsecond resolution.
[[nodiscard]] double now_unix_seconds();

/// Decimal text of `v` that reads back exactly, in the fewest of 15..17 significant digits
/// (0.2 stays "0.2"): for SQL text parameters and messages.
[[nodiscard]] std::string format_double(double v);

/// Throws ConfigError when a parameter has no distribution, its distribution is invalid, or its
/// value lies outside its domain (distributions without a parameter are not checked: they are not
/// stored). `where` names the study for the message.
void validate_trial_params(const std::map<std::string, double>& params,
                           const std::map<std::string, Distribution>& distributions, const std::string& where);

/// The distributions create_trial() stores: only those of the trial's own parameters, each also as
/// its JSON text for the trial_params.distribution column. Call validate_trial_params() first.
struct StoredDistributions {
  std::map<std::string, Distribution> used;
  std::map<std::string, std::string> json;
};
[[nodiscard]] StoredDistributions stored_distributions(const std::map<std::string, double>& params,
                                                       const std::map<std::string, Distribution>& distributions);

/// Throws TrialNotRunningError for report(step) on trial `trial_id` in `state` unless it is running.
/// `display` names the storage for the message.
void require_running_for_report(const std::string& display, int64_t trial_id, int64_t step, int64_t state);

/// Throws ConfigError when finish_trial() is asked to leave trial `trial_id` running.
void validate_finish_state(const std::string& display, int64_t trial_id, TrialState state);

/// Parses a stored distribution; throws IoError naming `where` when it is malformed.
[[nodiscard]] Distribution parse_distribution(const std::string& text, const std::string& where);

/// The message fail_stale_trials() stores in the "fail_reason" attribute.
[[nodiscard]] std::string stale_reason(double timeout_seconds);

/// Throws ConfigError unless `timeout_seconds` is finite and > 0.
void validate_stale_timeout(double timeout_seconds);

}  // namespace kiln::tune::storage_detail
