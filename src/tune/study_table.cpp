#include "kiln/tune/study_table.h"

#include <cctype>
#include <cstdio>
#include <sstream>

#include "kiln/tune/importance.h"

namespace kiln::tune {
namespace {

std::string fmt(double v, const char* f = "%.4g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string short_value(const nlohmann::json& v) {
  if (v.is_number_float()) return fmt(v.get<double>());
  return param_text(v);
}

std::string params_text(const Trial& t, bool exact) {
  std::string s;
  const nlohmann::json params = t.external_params();
  for (const auto& [name, value] : params.items()) {
    s += (s.empty() ? "" : " ") + name + "=" + (exact ? param_text(value) : short_value(value));
  }
  return s;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string clip(std::string s, std::size_t n) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s += std::string(w - s.size(), ' ');
  return s;
}

}  // namespace

StateCounts count_states(const std::vector<Trial>& trials) {
  StateCounts c;
  for (const auto& t : trials) {
    switch (t.state) {
      case TrialState::kRunning: ++c.running; break;
      case TrialState::kComplete: ++c.complete; break;
      case TrialState::kPruned: ++c.pruned; break;
      case TrialState::kFailed: ++c.failed; break;
    }
  }
  return c;
}

std::string compact_reason(const std::string& reason) {
  const auto quoted = reason.find("last output:\n");
  std::string head = first_line(reason.substr(0, quoted));
  while (!head.empty() && (head.back() == ';' || std::isspace(static_cast<unsigned char>(head.back())))) head.pop_back();
  std::string s = clip(head, 160);
  if (quoted == std::string::npos) return s;
  std::string last;
  std::istringstream lines(reason.substr(quoted + 13));
  for (std::string line; std::getline(lines, line);) {
    const auto start = line.find_first_not_of(" \t\r");
    if (start != std::string::npos) last = line.substr(start);
  }
  if (!last.empty()) s += " | last output: " + clip(last, 120);
  return s;
}

std::string table_header(const std::string& metric) {
  return pad("trial", 6) + pad("state", 10) + pad(metric, 14) + pad("duration", 10) + "params";
}

std::string trial_row(const Trial& t) {
  std::string value = t.value ? fmt(*t.value, "%.6g") : "-";
  if (t.state == TrialState::kPruned && !t.intermediate.empty()) {
    value += " @" + std::to_string(t.intermediate.rbegin()->first);
  }
  const double end = t.datetime_complete ? *t.datetime_complete : unix_now();
  std::string line = pad(std::to_string(t.number), 6) + pad(to_string(t.state), 10) + pad(value, 14) +
                     pad(fmt(end - t.datetime_start, "%.1fs"), 10) + params_text(t, false);
  if (t.state == TrialState::kFailed) {
    const auto it = t.user_attrs.find("fail_reason");
    if (it != t.user_attrs.end()) line += "  (" + compact_reason(it->second) + ")";
  }
  return line;
}

std::string best_line(const std::optional<Trial>& best) {
  if (!best) return "no complete trial yet";
  return "best value " + param_text(*best->value) + " at trial " + std::to_string(best->number) + ": " +
         params_text(*best, true);
}

std::string importance_line(const std::vector<Trial>& trials, const SearchSpace& space) {
  const auto imp = param_importances(trials, space);
  if (imp.empty()) return "";
  std::string s;
  for (const auto& p : imp) s += (s.empty() ? "" : "  ") + p.name + " " + fmt(p.importance, "%.2f");
  return "importance (share of variance explained by marginal means): " + s;
}

std::string stop_line(const TuneSummary& summary, const StateCounts& study) {
  const char* why = "";
  switch (summary.reason) {
    case StopReason::kTrials: why = "the study has its trials"; break;
    case StopReason::kTimeout: why = "--timeout reached"; break;
    case StopReason::kExhausted: why = "the grid is exhausted"; break;
    case StopReason::kInterrupted: why = "interrupted; run the same command again to resume"; break;
    case StopReason::kFailures: why = "too many trials failed in a row; see their reasons above"; break;
    case StopReason::kConfigError: why = "a trial found an error in the config"; break;
  }
  return "stopped: " + std::string(why) + ". This run: " + std::to_string(summary.completed) + " complete, " +
         std::to_string(summary.pruned) + " pruned, " + std::to_string(summary.failed) + " failed; study: " +
         std::to_string(study.complete) + " complete, " + std::to_string(study.pruned) + " pruned, " +
         std::to_string(study.failed) + " failed";
}

std::string study_listing(const StudyInfo& study, const std::vector<Trial>& trials, const SearchSpace& space) {
  const auto it = study.user_attrs.find("metric");
  const std::string metric = it != study.user_attrs.end() ? it->second : std::string("value");
  std::string s = "study " + study.name + " (" + to_string(study.direction) + " " + metric + ")\n";
  s += table_header(metric) + "\n";
  for (const auto& t : trials) s += trial_row(t) + "\n";
  const StateCounts c = count_states(trials);
  s += std::to_string(trials.size()) + " trials: " + std::to_string(c.complete) + " complete, " +
       std::to_string(c.pruned) + " pruned, " + std::to_string(c.failed) + " failed, " + std::to_string(c.running) +
       " running\n";
  const std::string imp = importance_line(trials, space);
  if (!imp.empty()) s += imp + "\n";
  s += best_line(best_trial(trials, study.direction)) + "\n";
  return s;
}

}  // namespace kiln::tune
