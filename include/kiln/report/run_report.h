// The training-run page: what `kiln report RUN_DIR` writes and `kiln train` / `kiln run` write at
// their end. load_run() reads a run directory's files; run_page() draws them (no I/O).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::report {

/// One step record of metrics.jsonl ({"type":"step",...}).
struct StepRecord {
  int epoch = 0;
  long long step = 0;
  double loss = 0, lr = 0, grad_norm = 0;  ///< NaN when the file has null
  /// Per-parameter gradient norms, on the steps the trainer logs them (every 50th and each
  /// epoch's last); empty on the others.
  std::map<std::string, double> layer_grad_norms;
};

/// A {"type":"warning"} record of metrics.jsonl (vanishing gradients, skipped steps).
struct TrainWarning {
  long long step = 0;
  std::string message;
};

/// One epoch record of metrics.jsonl ({"type":"epoch",...}); NaN for null fields.
struct EpochLog {
  int epoch = 0;
  double train_loss = 0, val_loss = 0, val_accuracy = 0, val_macro_f1 = 0, lr = 0, grad_norm = 0, seconds = 0;
  long long skipped_steps = 0;
};

/// One feature's mean absolute attribution over the explained rows.
struct FeatureWeight {
  std::string feature;
  double mean_abs = 0;
};

/// One class's features, largest mean |attribution| first.
struct ClassImportance {
  std::string label;
  std::vector<FeatureWeight> features;
};

/// importance.json in an artifact directory, written by `kiln explain ARTIFACT --global`:
/// {"method": "linear"|"kernel"|"partition"|"ig", "space": "logit"|"probability", "rows": N,
///  "classes": [{"label", "features": [{"feature", "mean_abs"}]}], "overall": [{"feature", "mean_abs"}]}.
struct GlobalImportance {
  std::string method;  ///< the attribution method
  std::string space;   ///< what the attributions add up to: "logit" or "probability"
  long long rows = 0;  ///< examples explained
  std::vector<ClassImportance> classes;
  std::vector<FeatureWeight> overall;  ///< may be empty
};

/// Parses importance.json's text (`path` names it in errors). Features are sorted by mean_abs,
/// largest first. Throws DataError naming the file, the field, what was found and the fix.
[[nodiscard]] GlobalImportance parse_importance(const std::string& text, const std::string& path);

/// What a run directory holds. Every part but `dir` may be missing (empty / null).
struct RunFiles {
  std::string dir;              ///< the run directory as given
  std::string manifest_path;    ///< RUN/model/kiln.json (or RUN/kiln.json for an artifact directory)
  nlohmann::json manifest;      ///< kiln.json, null without one
  std::string metrics_path;     ///< RUN/metrics.jsonl, "" without one
  /// By step and by epoch; a record logged again (a resumed run) replaces the earlier one.
  std::vector<StepRecord> steps;
  std::vector<EpochLog> epochs;
  std::vector<TrainWarning> warnings;
  std::string data_report_path; ///< RUN/data_report.json, or report.json next to the training file
  nlohmann::json data_report;   ///< prepare's report.json format, null without one
  std::string selected_config;  ///< RUN/selected_config.yaml's text (model selection), "" without
  /// ARTIFACT/importance.json (next to kiln.json): its path when the file exists, "" without one.
  std::string importance_path;
  /// The parsed file; empty when it is absent or malformed.
  std::optional<GlobalImportance> importance;
  /// Why a present importance.json was skipped (its DataError message, naming the file), else "".
  /// A malformed optional file does not fail the report: the page says what is wrong.
  std::string importance_error;
};

/// Reads `dir`: a run directory (--out of kiln train/run) or an artifact directory. Throws IoError
/// when `dir` does not exist or is not a directory (a malformed importance.json is not an error: see
/// RunFiles::importance_error); DataError when it holds neither kiln.json nor
/// metrics.jsonl (naming both paths and what makes them), when a metrics.jsonl line is not a JSON
/// object of a known record (naming file:line and the fix), and when kiln.json or the data report
/// does not parse.
[[nodiscard]] RunFiles load_run(const std::string& dir);

/// Parses metrics.jsonl text (`path` names it in errors) into `run.steps` and `run.epochs`.
void parse_metrics_jsonl(const std::string& text, const std::string& path, RunFiles& run);

struct RunPageOptions {
  /// "kiln VERSION", shown in the footer.
  std::string generator = "kiln";
  /// Step series longer than this are downsampled (min/max per bucket) to this many points.
  std::size_t max_points = 1000;
  /// A class is a tail class when its training share is in the lowest `tail_fraction` of classes
  /// (by count; ties included). In (0, 1]; default 0.25.
  double tail_fraction = 0.25;
};

/// The whole page as HTML. Draws what `run` holds; says in the page what is missing and why.
[[nodiscard]] std::string run_page(const RunFiles& run, const RunPageOptions& options = {});

/// The page for several runs side by side (`kiln report A B ...`): each metric per run, per-class
/// F1 with deltas against the first run, and the configs that differ. Needs runs with kiln.json;
/// throws DataError naming a run without test or validation metrics.
[[nodiscard]] std::string comparison_page(const std::vector<RunFiles>& runs, const RunPageOptions& options = {});

}  // namespace kiln::report
