// tune.yaml: what to tune (a training run of Kiln's own, or any command), over which search space,
// toward which metric. See docs/tuning.md for the format.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/tune/study.h"

namespace kiln::tune {

enum class ObjectiveKind { kTrain = 0, kCommand = 1 };

/// `objective: {command: ..., metric_regex: ...}`: any program, one trial = one run.
struct CommandObjectiveSpec {
  /// Run with /bin/sh -c after `{name}` of each parameter is replaced by its value.
  std::string command;
  /// ECMAScript regex matched against each output line (stdout and stderr); the objective value is
  /// the first capture group of the last matching line.
  std::string metric_regex;
  /// Optional: a line matching it reports an intermediate value for pruning; with two capture
  /// groups they are (step, value), with one the value and the step counts matches from 0.
  std::string intermediate_regex;
  /// Working directory (relative paths: from the tune.yaml's directory). Default: the trial's
  /// directory.
  std::string cwd;
  /// Seconds before one trial is stopped and marked failed; 0 = no limit. Default 0.
  double timeout_s = 0;
};

/// A Kiln training run per trial (`kiln-ml run` or `kiln-ml train`, as a child process).
struct TrainObjectiveSpec {
  /// The base run config (data, featurizer, model, train), before parameters are applied:
  /// `base_config` file with the tune.yaml's own data/featurizer/model/train sections merged over it.
  nlohmann::json base = nlohmann::json::object();
  /// Validation metric reported each epoch and optimized: val_macro_f1 (default), val_accuracy
  /// or val_loss.
  std::string metric = "val_macro_f1";
  /// Training and validation files (absolute). Empty: the base config's data.dataset is fetched
  /// and split as `kiln run` does.
  std::string train_file, val_file;
  /// Seconds before one trial is stopped and marked failed; 0 = no limit. Default 0.
  double timeout_s = 0;
};

struct TuneConfig {
  /// The file it came from ("" when parsed from a value), and its directory.
  std::string path;
  std::filesystem::path dir;
  SearchSpace space;
  /// Explicit grid values of parameters that list them (`grid: [v1, v2, ...]` in space.NAME), in
  /// internal representation (choice indices for categoricals), each in its parameter's domain and
  /// listed once. Only the grid sampler uses them (GridSamplerOptions::values).
  std::map<std::string, std::vector<double>> grid;
  Direction direction = Direction::kMaximize;
  ObjectiveKind kind = ObjectiveKind::kTrain;
  CommandObjectiveSpec command;
  TrainObjectiveSpec train;
  /// The optimized metric's name for tables and messages ("val_macro_f1", or the command's
  /// `metric` name, default "value").
  std::string metric_name = "val_macro_f1";
  /// The config as read (YAML as JSON), recorded in the study.
  nlohmann::json raw;
};

/// Parses a tune config value. `where` names it in messages (the file); relative paths resolve
/// against `dir`. Throws ConfigError naming the field, what was found and the fix.
[[nodiscard]] TuneConfig parse_tune_config(const nlohmann::json& j, const std::string& where,
                                           const std::filesystem::path& dir);
/// Reads and parses a tune.yaml file (IoError when it cannot be read).
[[nodiscard]] TuneConfig load_tune_config(const std::string& path);

/// "90", "90s", "10m", "1.5h", "1h30m" -> seconds. Throws ConfigError naming `what`.
[[nodiscard]] double parse_duration(const std::string& text, const std::string& what);

/// The run config of one trial: `base` with each parameter's value set at its path. Parameter
/// names are dotted paths into the run config (`train.optimizer.lr`, `model.params.dropout`) or
/// short names: lr, weight_decay, batch_size, epochs, warmup_ratio, label_smoothing, grad_clip,
/// dropout, hidden_size, layers, dim, max_features (see train_param_path). `layers` and
/// `hidden_size` set model.params.hidden to `layers` copies of the width (the base's first hidden
/// width when `hidden_size` is not tuned, else 256).
/// When the base's model.family is "bert" the model short names mean BERT's parameters: layers ->
/// model.params.num_hidden_layers, hidden_size -> model.params.hidden_size (and intermediate_size
/// = 4 x hidden_size unless that is tuned or set too), heads -> model.params.num_attention_heads,
/// dropout -> model.params.hidden_dropout_prob and attention_probs_dropout_prob, pooling ->
/// model.params.pooling, max_length -> featurizer.max_length.
[[nodiscard]] nlohmann::json apply_train_params(const nlohmann::json& base, const nlohmann::json& params);

/// The run-config path a training parameter name maps to ("lr" -> "train.optimizer.lr"), or the
/// name itself when it is a dotted path under data/featurizer/model/train. `family` is the run's
/// model family ("" when the base config names none): for "bert" the model short names map to
/// BERT's parameters (see apply_train_params; "dropout" returns the first of its two paths).
/// Throws ConfigError for any other name, listing the short names, and for a BERT-only short name
/// (heads, pooling, max_length) with another family.
[[nodiscard]] std::string train_param_path(const std::string& name, const std::string& family = "");

/// Recursive merge of objects (`patch` wins; arrays and scalars are replaced).
[[nodiscard]] nlohmann::json merge_json(nlohmann::json base, const nlohmann::json& patch);

}  // namespace kiln::tune
