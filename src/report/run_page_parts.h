// Private pieces shared by the run and comparison pages.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/report/page.h"

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

}  // namespace kiln::report::detail
