// Reading a run directory for its report.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/report/run_report.h"

namespace fs = std::filesystem;

namespace kiln::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError(p.string() + ": cannot read; check its permissions");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const fs::path& p, const std::string& what) {
  try {
    return nlohmann::json::parse(read_text(p));
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(p.string() + ": " + what + " is not valid JSON (" + e.what() +
                    "); it was cut short or edited: regenerate it");
  }
}

double num_field(const nlohmann::json& j, const char* key, const std::string& where, bool required) {
  const auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return kNaN;
    throw DataError(where + ": record has no \"" + key + "\"; the line was cut short or edited: rerun the training");
  }
  if (it->is_null()) return kNaN;
  if (!it->is_number()) {
    throw DataError(where + ": \"" + key + "\" is " + it->dump() + ", expected a number; rerun the training");
  }
  return it->get<double>();
}

}  // namespace

void parse_metrics_jsonl(const std::string& text, const std::string& path, RunFiles& run) {
  std::map<long long, StepRecord> steps;
  std::map<int, EpochLog> epochs;
  std::vector<TrainWarning> warnings;
  std::size_t pos = 0;
  long long line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw DataError(where + ": not a JSON record (" + std::string(e.what()) +
                      "); metrics.jsonl holds one JSON object per line as kiln train writes it: delete the "
                      "damaged line or rerun the training");
    }
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      throw DataError(where + ": expected a JSON object with a \"type\" (\"step\" or \"epoch\"), got " +
                      j.dump().substr(0, 80) + "; delete the line or rerun the training");
    }
    const std::string type = j["type"].get<std::string>();
    if (type == "step") {
      StepRecord s;
      s.epoch = static_cast<int>(num_field(j, "epoch", where, true));
      s.step = static_cast<long long>(num_field(j, "step", where, true));
      s.loss = num_field(j, "loss", where, true);
      s.lr = num_field(j, "lr", where, false);
      s.grad_norm = num_field(j, "grad_norm", where, false);
      if (const auto it = j.find("layer_grad_norms"); it != j.end() && it->is_object()) {
        for (const auto& [name, v] : it->items()) s.layer_grad_norms[name] = v.is_number() ? v.get<double>() : kNaN;
      }
      steps[s.step] = s;
    } else if (type == "epoch") {
      EpochLog e;
      e.epoch = static_cast<int>(num_field(j, "epoch", where, true));
      e.train_loss = num_field(j, "train_loss", where, true);
      e.val_loss = num_field(j, "val_loss", where, false);
      e.val_accuracy = num_field(j, "val_accuracy", where, false);
      e.val_macro_f1 = num_field(j, "val_macro_f1", where, false);
      e.lr = num_field(j, "lr", where, false);
      e.grad_norm = num_field(j, "grad_norm", where, false);
      e.seconds = num_field(j, "seconds", where, false);
      const double sk = num_field(j, "skipped_steps", where, false);
      e.skipped_steps = std::isfinite(sk) ? static_cast<long long>(sk) : 0;
      epochs[e.epoch] = e;
    }
    else if (type == "warning") {
      const double st = num_field(j, "step", where, false);
      warnings.push_back(TrainWarning{std::isfinite(st) ? static_cast<long long>(st) : 0,
                                      j.value("message", std::string())});
    }
    // Other record types (added by later versions) are not drawn.
  }
  run.steps.clear();
  run.epochs.clear();
  for (auto& [k, s] : steps) run.steps.push_back(s);
  for (auto& [k, e] : epochs) run.epochs.push_back(e);
  run.warnings = std::move(warnings);
}

RunFiles load_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    throw IoError(dir + ": no such directory; give the --out directory of `kiln train` or `kiln run`");
  }
  if (!fs::is_directory(dir, ec)) {
    throw IoError(dir + ": not a directory; give the --out directory of `kiln train` or `kiln run`");
  }
  RunFiles run;
  run.dir = dir;
  const fs::path d(dir);
  fs::path run_dir = d;
  if (fs::exists(d / "model" / "kiln.json")) {
    run.manifest_path = (d / "model" / "kiln.json").string();
  } else if (fs::exists(d / "kiln.json")) {
    run.manifest_path = (d / "kiln.json").string();
    // An artifact directory OUT/model: its run files are one level up.
    const fs::path parent = fs::weakly_canonical(d, ec).parent_path();
    if (!ec && fs::exists(parent / "metrics.jsonl")) run_dir = parent;
  }
  if (fs::exists(run_dir / "metrics.jsonl")) run.metrics_path = (run_dir / "metrics.jsonl").string();
  if (run.manifest_path.empty() && run.metrics_path.empty()) {
    throw DataError(dir + ": not a run directory: it holds neither " + (d / "model" / "kiln.json").string() +
                    " (the artifact) nor " + (d / "metrics.jsonl").string() +
                    " (the training log); give the --out directory of `kiln train` or `kiln run`");
  }
  if (!run.manifest_path.empty()) {
    run.manifest = read_json(run.manifest_path, "the artifact manifest");
    if (!run.manifest.is_object()) {
      throw DataError(run.manifest_path + ": expected a JSON object (the artifact manifest); regenerate the artifact");
    }
  }
  if (!run.metrics_path.empty()) parse_metrics_jsonl(read_text(run.metrics_path), run.metrics_path, run);
  // The data report: kiln run writes RUN/data_report.json; kiln train on `kiln prepare` output finds
  // prepare's report.json next to its training file.
  if (fs::exists(run_dir / "data_report.json")) {
    run.data_report_path = (run_dir / "data_report.json").string();
  } else if (run.manifest.is_object()) {
    const auto& data = run.manifest.value("training", nlohmann::json::object()).value("data", nlohmann::json::object());
    const std::string train_file = data.value("train_file", std::string());
    if (!train_file.empty()) {
      const fs::path candidate = fs::path(train_file).parent_path() / "report.json";
      if (fs::exists(candidate, ec)) run.data_report_path = candidate.string();
    }
  }
  if (!run.data_report_path.empty()) run.data_report = read_json(run.data_report_path, "the data report");
  if (fs::exists(run_dir / "selected_config.yaml")) run.selected_config = read_text(run_dir / "selected_config.yaml");
  if (!run.manifest_path.empty()) {
    const fs::path importance = fs::path(run.manifest_path).parent_path() / "importance.json";
    if (fs::exists(importance, ec)) {
      run.importance_path = importance.string();
      try {
        run.importance = parse_importance(read_text(importance), run.importance_path);
      } catch (const Error& e) {
        run.importance_error = e.what();
      }
    }
  }
  return run;
}

}  // namespace kiln::report
