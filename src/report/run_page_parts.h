// Private pieces shared by the run and comparison pages.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/report/page.h"
#include "kiln/report/run_report.h"

namespace kiln::report::detail {

/// j[key] as a number, NaN when absent, null or not a number.
[[nodiscard]] double jnum(const nlohmann::json& j, const char* key);
/// j[key] as text ("" when absent or null; non-strings dumped).
[[nodiscard]] std::string jstr(const nlohmann::json& j, const char* key);
/// j[key] when it is an object, else an empty object.
[[nodiscard]] const nlohmann::json& jobj(const nlohmann::json& j, const char* key);
/// ("test", metrics.test) or ("validation", metrics.validation) or ("", nullptr).
[[nodiscard]] std::pair<std::string, const nlohmann::json*> final_metrics(const nlohmann::json& manifest);
[[nodiscard]] std::vector<std::string> metric_labels(const nlohmann::json& metrics, const nlohmann::json& manifest);
/// Classes whose count is within the lowest `fraction` of classes (ties included).
[[nodiscard]] std::set<std::string> tail_classes(const std::map<std::string, double>& counts, double fraction);
/// Classification report table, per-class F1 bars, confusion matrices and reliability diagram;
/// figure ids start with `prefix`.
void add_classification(Page& page, const nlohmann::json& metrics, const std::vector<std::string>& labels,
                        const std::set<std::string>& tail, const std::string& split, const std::string& prefix);

/// The "Data" section: the data report (class counts, drop reasons) or the artifact's profile, and
/// the text-length histogram.
void add_data_section(Page& page, const RunFiles& run, const std::set<std::string>& tail);
/// Tail classes of a run: by the data report's train split counts, else the profile's shares.
[[nodiscard]] std::set<std::string> run_tail_classes(const RunFiles& run, double fraction);
/// The summary's rows: task, family, sizes, final metrics, calibration, files.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> summary_rows(const RunFiles& run);
/// The "Config and versions" section (when the run has kiln.json).
void add_config_section(Page& page, const RunFiles& run, const std::string& generator);
/// The "Top features per class" section from run.importance: an overall chart and one <details>
/// per class with its `top` features; or why there is none and the `kiln explain ARTIFACT --global`
/// command (`artifact` as the reader should type it) that makes it.
void add_importance(Page& page, const RunFiles& run, const std::string& artifact, std::size_t top = 10);
/// The artifact directory of a run (where kiln.json is), or the run directory without one.
[[nodiscard]] std::string artifact_dir_of(const RunFiles& run);

}  // namespace kiln::report::detail
