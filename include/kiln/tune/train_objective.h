// Tunes Kiln's own models: each trial writes its run config and trains it in a `kiln-ml` child
// process, whose per-epoch validation line feeds the pruner. Process isolation keeps this module
// free of LibTorch, lets --jobs run trials side by side, and lets a pruned trial be killed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "kiln/tune/objective.h"
#include "kiln/tune/tune_config.h"

namespace kiln::tune {

struct TrainObjectiveOptions {
  /// The kiln-ml executable (absolute path). Required.
  std::string kiln_ml;
  /// `--threads` given to each training child; 0 = not given (all cores). Default 0.
  int threads = 0;
  /// Dataset cache directory for `kiln-ml run --cache-dir`; empty = its default. Default empty.
  std::string cache_dir;
};

/// Per trial, in the trial's directory: config.yaml (the base run config with the trial's
/// parameters applied, see apply_train_params) and run/ (metrics.jsonl and the artifact in model/;
/// the resume checkpoints are deleted when the trial ends).
/// Runs `kiln-ml run` (data.dataset) or `kiln-ml train --train --val` (objective files). Each
/// epoch's validation metric is reported as step = epoch. The value is the metric at the epoch
/// the trained model keeps (kiln.json training.best_epoch, read from run/metrics.jsonl). A child
/// exiting with status 2 (a configuration error) fails the trial with config_error set.
/// Thread-safe.
class TrainObjective : public Objective {
 public:
  TrainObjective(TrainObjectiveSpec spec, TrainObjectiveOptions options);
  [[nodiscard]] ObjectiveResult run(TrialContext& ctx) override;

  /// The child's command line for a trial config and run directory.
  [[nodiscard]] std::vector<std::string> command_for(const std::filesystem::path& config,
                                                     const std::filesystem::path& run_dir) const;

 private:
  TrainObjectiveSpec spec_;
  TrainObjectiveOptions options_;
};

/// Parses `kiln train`'s per-epoch log line ("kiln: epoch 3/10  loss 0.41  val_loss 0.52  val_acc
/// 0.83  val_macro_f1 0.81  lr ..."): true with the epoch and the value of `metric` (val_macro_f1,
/// val_accuracy or val_loss) when `line` is one and carries it.
[[nodiscard]] bool parse_epoch_line(const std::string& line, const std::string& metric, int64_t& epoch, double& value);

/// The data set every trial of `spec` fetches by name (the base config's data.dataset, else
/// "spamassassin", the run config's default), so that it can be fetched once before the trials
/// start; "" when the spec trains on files (train_file set).
[[nodiscard]] std::string dataset_to_fetch(const TrainObjectiveSpec& spec);

}  // namespace kiln::tune
