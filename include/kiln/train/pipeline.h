// The training pipeline over loaded datasets: fit the featurizer on the training texts, encode
// labels, build the model from its spec, train, and measure on validation and test data.
// No I/O: the CLI reads files, reports progress and saves the artifact.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/dataset.h"
#include "kiln/nn/text_classifier.h"
#include "kiln/text/featurizer.h"
#include "kiln/train/metrics.h"
#include "kiln/train/run_config.h"
#include "kiln/train/trainer.h"

namespace kiln::train {

struct PipelineResult {
  std::unique_ptr<text::Featurizer> featurizer;  ///< fitted
  std::shared_ptr<nn::TextClassifier> model;     ///< best weights, eval() mode, on CPU
  nn::ModelSpec model_spec;                      ///< resolved (defaults filled in)
  std::vector<std::string> labels;               ///< class id → label (sorted)
  TrainResult train;
  text::CsrMatrix<float> train_features;         ///< for the data profile
  bool has_val = false, has_test = false;
  ClassificationMetrics val_metrics, test_metrics;
  double featurize_seconds = 0, train_seconds = 0;
  std::vector<std::string> warnings;  ///< rows skipped for unknown labels, etc.
};

/// Runs the pipeline. `val` and `test` may be null. Rows of val/test whose label never occurs in
/// train are left out (and counted in `warnings`). Throws ConfigError/DataError.
[[nodiscard]] PipelineResult run_pipeline(const RunConfig& config, const data::Dataset& train,
                                          const data::Dataset* val, const data::Dataset* test,
                                          const TrainerCallbacks& callbacks = {});

}  // namespace kiln::train
