#include "kiln/tune/command_objective.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "format.h"
#include "kiln/core/subprocess.h"

namespace kiln::tune {
namespace {

/// The last `n` non-empty lines of `text`.
std::string last_lines(const std::string& text, int n) {
  return format_detail::last_lines(text, n, format_detail::TrailingSpace::kTrim);
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

}  // namespace

bool parse_number(const std::string& text, double& out) {
  std::size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  if (b == e) return false;
  const std::string s = text.substr(b, e - b);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

CommandObjective::CommandObjective(CommandObjectiveSpec spec) : spec_(std::move(spec)) {}

std::string CommandObjective::command_for(const nlohmann::json& params) const {
  const std::string& cmd = spec_.command;
  std::string out;
  std::size_t i = 0;
  while (i < cmd.size()) {
    if (cmd[i] == '{' && (i == 0 || cmd[i - 1] != '$')) {
      const std::size_t close = cmd.find('}', i + 1);
      if (close != std::string::npos) {
        const std::string name = cmd.substr(i + 1, close - i - 1);
        if (params.contains(name)) {
          out += param_text(params[name]);
          i = close + 1;
          continue;
        }
      }
    }
    out += cmd[i++];
  }
  return out;
}

ObjectiveResult CommandObjective::run(TrialContext& ctx) {
  const std::regex metric_re(spec_.metric_regex, std::regex::ECMAScript);
  const bool has_intermediate = !spec_.intermediate_regex.empty();
  const std::regex inter_re = has_intermediate ? std::regex(spec_.intermediate_regex, std::regex::ECMAScript) : std::regex();

  core::SubprocessOptions opts;
  opts.cwd = spec_.cwd.empty() ? ctx.dir() : std::filesystem::path(spec_.cwd);
  opts.timeout_s = spec_.timeout_s;
  for (const auto& [name, value] : ctx.params().items()) opts.env.emplace_back(param_env_name(name), param_text(value));
  opts.env.emplace_back("KILN_TRIAL_NUMBER", std::to_string(ctx.trial().number));
  opts.env.emplace_back("KILN_TRIAL_DIR", ctx.dir().string());

  std::optional<std::string> last_capture;
  std::optional<double> last_intermediate;
  int64_t auto_step = 0;
  bool pruned = false;
  std::string bad_intermediate;
  const std::string command = command_for(ctx.params());

  const auto on_line = [&](core::OutputStream, const std::string& line) {
    std::smatch m;
    if (std::regex_search(line, m, metric_re)) last_capture = m[1].str();
    if (has_intermediate && std::regex_search(line, m, inter_re)) {
      double step = static_cast<double>(auto_step), value = 0;
      const bool two = inter_re.mark_count() == 2;
      if ((two && !parse_number(m[1].str(), step)) || !parse_number(m[two ? 2 : 1].str(), value)) {
        if (bad_intermediate.empty()) bad_intermediate = line;
        return true;
      }
      ++auto_step;
      last_intermediate = value;
      if (ctx.report(static_cast<int64_t>(std::llround(step)), value)) {
        pruned = true;
        return false;
      }
    }
    return true;
  };
  const core::SubprocessResult r = core::run_subprocess({"/bin/sh", "-c", command}, opts, on_line, &ctx.interrupted());

  ObjectiveResult result;
  const std::string tail = last_lines(r.out_tail + "\n" + r.err_tail, 20);
  if (pruned) {
    result = ObjectiveResult::pruned(last_intermediate);
  } else if (r.stopped) {
    result = ObjectiveResult::failed("interrupted");
  } else if (r.timed_out) {
    result = ObjectiveResult::failed("timed out after " + seconds_text(spec_.timeout_s) + " (objective.timeout)");
  } else if (r.exit_code != 0) {
    const std::string what = r.exit_code > 128 ? "was killed by signal " + std::to_string(r.exit_code - 128)
                                               : "exited with status " + std::to_string(r.exit_code);
    result = ObjectiveResult::failed("command " + what + ": " + command +
                                     (tail.empty() ? "" : "\nlast output:\n" + last_lines(tail, 5)));
  } else if (!last_capture) {
    result = ObjectiveResult::failed("metric_regex '" + spec_.metric_regex + "' matched no line of the output of: " + command +
                                     (tail.empty() ? " (it printed nothing)" : "\nlast output:\n" + last_lines(tail, 5)));
  } else {
    double v = 0;
    if (!parse_number(*last_capture, v)) {
      result = ObjectiveResult::failed("metric_regex '" + spec_.metric_regex + "' captured '" + *last_capture +
                                       "', which is not a number; make the first group capture only the number");
    } else if (std::isnan(v)) {
      result = ObjectiveResult::failed("the metric is NaN");
    } else {
      result = ObjectiveResult::complete(v);
    }
  }
  if (!bad_intermediate.empty()) result.attrs["intermediate_warning"] = "intermediate_regex matched a line without a number: " + bad_intermediate;
  if (result.state == TrialState::kFailed && !tail.empty()) result.attrs["output_tail"] = tail;
  return result;
}

}  // namespace kiln::tune
