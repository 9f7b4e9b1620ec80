// The pipeline: a run config and loaded data sets → a trained artifact. Fits the preprocessors on
// the training examples (or, warm-starting, keeps an artifact's), encodes labels, builds the model
// from its spec, trains, measures validation and test data through the Predictor (the path
// `kiln evaluate` takes), and assembles the manifest. No printing: the CLI reports progress.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/data/dataset.h"
#include "kiln/train/metrics.h"
#include "kiln/train/run_config.h"
#include "kiln/train/trainer.h"

namespace kiln::pipeline {

/// Most examples of the validation split kept inside the artifact as its held-out sample.
inline constexpr std::size_t kMaxHeldOut = 2000;

struct PipelineResult {
  artifact::Artifact artifact;  ///< manifest (metrics, profile, training config), preprocessors, model (eval, CPU)
  train::TrainResult train;
  bool has_val = false, has_test = false;
  train::ClassificationMetrics val_metrics, test_metrics;
  data::Dataset heldout;  ///< up to kMaxHeldOut validation examples, saved inside the artifact
  double featurize_seconds = 0, train_seconds = 0;
  std::vector<std::string> warnings;  ///< rows skipped for unknown labels, etc.
};

/// Trains from scratch. `val` and `test` may be null. Rows of val/test whose label never occurs in
/// train are left out (and counted in `warnings`). Throws ConfigError/DataError. With
/// callbacks.parallel, a rank other than 0 returns after training with only `train` and
/// `train_seconds` filled (rank 0 assembles the artifact).
[[nodiscard]] PipelineResult run_pipeline(const train::RunConfig& config, const data::Dataset& train,
                                          const data::Dataset* val, const data::Dataset* test,
                                          const train::TrainerCallbacks& callbacks = {});

/// Encodes examples with the preprocessors given: prep::encode_all, or a cache of its results
/// (learn::EncodingCache).
using Encoder = std::function<nn::Batch(const prep::Preprocessors&, const data::Examples&)>;

/// Continues training `parent`'s model on new examples: its preprocessors are kept as they are (not
/// refitted), its labels and model spec too; training starts from its weights with a fresh
/// optimizer and schedule from `config.trainer`. Rows whose label the parent does not know are left
/// out (warnings). The result's manifest records the parent in "lineage". `encode`, when set,
/// encodes the training and validation rows (unset: prep::encode_all).
[[nodiscard]] PipelineResult warm_start(const artifact::Artifact& parent, const train::RunConfig& config,
                                        const data::Dataset& train, const data::Dataset* val,
                                        const data::Dataset* test, const train::TrainerCallbacks& callbacks = {},
                                        const Encoder& encode = {});

/// Writes the result's artifact (with its held-out sample) to `dir`, atomically.
void save(const PipelineResult& result, const std::string& dir);

/// The rows of `ds` whose label is one of `labels`, with their class ids.
struct KnownLabels {
  data::Dataset rows;
  std::vector<int64_t> y;
  std::string warning;  ///< "NAME: skipped rows whose label ...: a (3), b (1)"; empty when none skipped
};
[[nodiscard]] KnownLabels keep_known_labels(const data::Dataset& ds, const std::vector<std::string>& labels,
                                            const std::string& name);

struct Evaluation {
  train::ClassificationMetrics metrics;
  std::string warning;  ///< rows skipped for labels the model does not know
};
/// Metrics of the predictor on labelled data: the one evaluation `kiln evaluate`, `kiln train --test`
/// and the quality gates share. Throws DataError when no row has a label the model knows.
[[nodiscard]] Evaluation evaluate(const artifact::Predictor& predictor, const data::Dataset& ds,
                                  const std::string& name);

}  // namespace kiln::pipeline
