// The pipeline's stages, shared by run_pipeline, warm_start and model selection (select.cpp):
// fit the preprocessors and build the model (fit_setup), encode the splits (encode_splits), train
// (train::train_model), then assemble the artifact with calibration and metrics (assemble).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/pipeline/pipeline.h"

namespace kiln::pipeline {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// A run once the preprocessors are fitted and the model is built.
struct Setup {
  train::RunConfig config;
  prep::Preprocessors preprocessors;
  std::vector<std::string> labels;
  nn::ModelSpec model_spec;
  std::shared_ptr<nn::Model> model;
  KnownLabels train;
  nlohmann::json lineage = nlohmann::json::object();
  std::vector<std::string> warnings;  ///< notes from building the model (an --init directory's unused tensors)
  Encoder encode;  ///< encodes the splits; unset: prep::encode_all
  /// The training rows as the preprocessors' fit encoded them (Preprocessor::fit_encode); used by
  /// encode_splits when `encode` is unset, so the training texts are analyzed once.
  std::optional<nn::Batch> fitted_train;
};

/// The training and validation rows encoded by a setup's preprocessors.
struct Encoded {
  train::LabeledBatch train, val;
  KnownLabels val_rows;
  bool has_val = false;
  std::vector<std::string> warnings;
  double seconds = 0;
};

/// The sorted distinct labels of the training set; DataError when there are fewer than 2.
[[nodiscard]] std::vector<std::string> training_labels(const data::Dataset& train);
/// Fits config.featurizer on the training rows with known labels and builds config.model (seeded).
[[nodiscard]] Setup fit_setup(const train::RunConfig& config, const data::Dataset& train,
                              const std::vector<std::string>& labels);
[[nodiscard]] Encoded encode_splits(const Setup& s, const data::Dataset* val);
/// The artifact of a trained setup: manifest, calibration on the validation split, validation and
/// test metrics through the Predictor.
[[nodiscard]] PipelineResult assemble(Setup s, Encoded e, train::TrainResult trained, double featurize_seconds,
                                      double train_seconds, const data::Dataset* test, std::vector<std::string> warnings);

}  // namespace kiln::pipeline
