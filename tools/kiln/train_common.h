// Shared by `kiln train` and `kiln run`: train through the pipeline with progress output, save the
// artifact, print the metrics.
#pragma once

#include <string>

#include "kiln/data/dataset.h"
#include "kiln/pipeline/select.h"
#include "kiln/train/run_config.h"
#include "kiln/train/trainer.h"

namespace kiln::cli {

struct TrainRunOutput {
  std::string artifact_dir;
  nlohmann::json metrics;  ///< test metrics if a test set was given, else validation metrics
};

/// Trains, saves the artifact to `out_dir`/model (run files: checkpoints and metrics.jsonl in
/// `out_dir`) and prints progress (stderr) and the metrics table (stdout). With `parallel` (this
/// process is one rank of a data-parallel job), a rank other than 0 trains only: it saves and
/// prints nothing and returns an empty output.
TrainRunOutput train_and_save(const train::RunConfig& config, const data::Dataset& train, const data::Dataset* val,
                              const data::Dataset* test, const std::string& out_dir, bool resume,
                              train::DataParallel* parallel = nullptr);

/// Model selection among `options.candidates` (their data config replaced by `data_config`), then as
/// train_and_save for the winner; prints the candidate table and writes OUT/selected_config.yaml,
/// the winner's recipe as a config.
TrainRunOutput select_and_save(pipeline::SelectionOptions options, const train::DataConfig& data_config,
                               const data::Dataset& train, const data::Dataset* val, const data::Dataset* test,
                               const std::string& out_dir);

/// The data columns the artifact was trained with (its training config's data.text_col and
/// data.image_col; "text" and "" for artifacts that do not record them).
struct ArtifactColumns {
  std::string text_col = "text";
  std::string image_col;
};
[[nodiscard]] ArtifactColumns artifact_columns(const nlohmann::json& training_config);

/// The artifact directory a verb was given: the directory itself, or OUT/model when given a run
/// directory OUT (said on stderr). Throws ArtifactError naming the fix when neither holds kiln.json.
[[nodiscard]] std::string artifact_arg(const std::string& dir);

}  // namespace kiln::cli
