#include "kiln/tune/train_objective.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>

#include "format.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/subprocess.h"

namespace kiln::tune {
namespace {

namespace fs = std::filesystem;

/// The last `n` non-empty lines of `text`.
std::string last_lines(const std::string& text, int n) {
  return format_detail::last_lines(text, n, format_detail::TrailingSpace::kKeep);
}

/// The child's own error message ("kiln: error: ..." lines), else its last lines.
std::string child_error(const std::string& err_tail) {
  std::string msg;
  std::size_t start = 0;
  while (start < err_tail.size()) {
    std::size_t end = err_tail.find('\n', start);
    if (end == std::string::npos) end = err_tail.size();
    const std::string line = err_tail.substr(start, end - start);
    if (line.rfind("kiln: error: ", 0) == 0) msg = line.substr(13);
    start = end + 1;
  }
  return msg.empty() ? last_lines(err_tail, 5) : msg;
}

/// The metric at the kept epoch, from run/model/kiln.json and run/metrics.jsonl.
std::optional<double> final_value(const fs::path& run_dir, const std::string& metric) {
  std::ifstream manifest(run_dir / "model" / "kiln.json");
  if (!manifest) return std::nullopt;
  nlohmann::json m = nlohmann::json::parse(manifest, nullptr, false);
  if (m.is_discarded() || !m.contains("training") || !m["training"].contains("best_epoch")) return std::nullopt;
  const int64_t best = m["training"]["best_epoch"].get<int64_t>();
  std::ifstream log(run_dir / "metrics.jsonl");
  std::string line;
  std::optional<double> value;
  while (std::getline(log, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j.value("type", "") != "epoch" || !j.contains("epoch")) continue;
    if (j["epoch"].get<int64_t>() != best) continue;
    if (j.contains(metric) && j[metric].is_number()) value = j[metric].get<double>();  // the last record wins (resume)
  }
  return value;
}

}  // namespace

bool parse_epoch_line(const std::string& line, const std::string& metric, int64_t& epoch, double& value) {
  const auto at = line.find("epoch ");
  if (at == std::string::npos || (at > 0 && line[at - 1] != ' ')) return false;
  const char* p = line.c_str() + at + 6;
  char* end = nullptr;
  const long long e = std::strtoll(p, &end, 10);
  if (end == p || *end != '/') return false;
  const std::string token = " " + std::string(metric == "val_accuracy" ? "val_acc" : metric) + " ";
  const auto t = line.find(token, at);
  if (t == std::string::npos) return false;
  const char* q = line.c_str() + t + token.size();
  const double v = std::strtod(q, &end);
  if (end == q) return false;
  epoch = e;
  value = v;
  return true;
}

TrainObjective::TrainObjective(TrainObjectiveSpec spec, TrainObjectiveOptions options)
    : spec_(std::move(spec)), options_(std::move(options)) {
  if (options_.kiln_ml.empty()) throw ConfigError("TrainObjectiveOptions.kiln_ml is empty; give the kiln-ml executable");
  if (options_.threads < 0) throw ConfigError("TrainObjectiveOptions.threads must be >= 0, got " + std::to_string(options_.threads));
}

std::vector<std::string> TrainObjective::command_for(const fs::path& config, const fs::path& run_dir) const {
  std::vector<std::string> argv = {options_.kiln_ml};
  if (options_.threads > 0) argv.insert(argv.end(), {"--threads", std::to_string(options_.threads)});
  if (spec_.train_file.empty()) {
    argv.insert(argv.end(), {"run", "--config", config.string(), "--out", run_dir.string()});
    if (!options_.cache_dir.empty()) argv.insert(argv.end(), {"--cache-dir", options_.cache_dir});
  } else {
    argv.insert(argv.end(), {"train", "--config", config.string(), "--train", spec_.train_file, "--val", spec_.val_file,
                             "--out", run_dir.string()});
  }
  return argv;
}

ObjectiveResult TrainObjective::run(TrialContext& ctx) {
  if (ctx.dir().empty()) throw Error("a training objective needs a trial directory (TunerOptions.trials_dir)");
  const nlohmann::json config = apply_train_params(spec_.base, ctx.params());
  const fs::path config_path = ctx.dir() / "config.yaml";
  const fs::path run_dir = ctx.dir() / "run";
  {
    std::error_code ec;
    fs::remove_all(run_dir, ec);  // a fresh run: never resume another attempt's checkpoint
  }
  core::write_file_atomic(config_path.string(),
                          "# Trial " + std::to_string(ctx.trial().number) + " of a kiln tune study: " +
                              ctx.params().dump() + "\n" + config.dump(2) + "\n");

  std::map<int64_t, double> by_epoch;
  bool pruned = false;
  std::optional<double> last;
  const auto on_line = [&](core::OutputStream stream, const std::string& line) {
    int64_t epoch = 0;
    double value = 0;
    if (stream != core::OutputStream::kStderr || !parse_epoch_line(line, spec_.metric, epoch, value)) return true;
    by_epoch[epoch] = value;
    last = value;
    if (ctx.report(epoch, value)) {
      pruned = true;
      return false;
    }
    return true;
  };
  core::SubprocessOptions opts;
  opts.cwd = ctx.dir();
  opts.timeout_s = spec_.timeout_s;
  const auto argv = command_for(config_path, run_dir);
  const core::SubprocessResult r = core::run_subprocess(argv, opts, on_line, &ctx.interrupted());
  // Resume files (tens of MB per trial) serve only `kiln train --resume`, which trials never use.
  for (const char* name : {"checkpoint.pt", "checkpoint.json", "best.pt"}) {
    std::error_code ec;
    fs::remove(run_dir / name, ec);
  }

  ObjectiveResult result;
  if (pruned) {
    result = ObjectiveResult::pruned(last);
  } else if (r.stopped) {
    result = ObjectiveResult::failed("interrupted");
  } else if (r.timed_out) {
    result = ObjectiveResult::failed("training timed out (objective.timeout)");
  } else if (r.exit_code != 0) {
    result = ObjectiveResult::failed("kiln-ml exited with status " + std::to_string(r.exit_code) + ": " +
                                     child_error(r.err_tail));
    result.config_error = r.exit_code == 2;
  } else {
    std::optional<double> v = final_value(run_dir, spec_.metric);
    if (!v && !by_epoch.empty()) v = by_epoch.rbegin()->second;
    if (!v || std::isnan(*v)) {
      result = ObjectiveResult::failed("training printed no " + spec_.metric +
                                       " (is there validation data?); last output:\n" + last_lines(r.err_tail, 5));
    } else {
      result = ObjectiveResult::complete(*v);
    }
  }
  result.attrs["run_dir"] = run_dir.string();
  if (result.state == TrialState::kFailed) result.attrs["output_tail"] = last_lines(r.err_tail, 20);
  return result;
}

std::string dataset_to_fetch(const TrainObjectiveSpec& spec) {
  if (!spec.train_file.empty()) return "";
  const nlohmann::json data = spec.base.contains("data") ? spec.base["data"] : nlohmann::json();
  if (data.is_object() && data.contains("dataset") && data["dataset"].is_string()) return data["dataset"].get<std::string>();
  return "spamassassin";  // the run config's default
}

}  // namespace kiln::tune
