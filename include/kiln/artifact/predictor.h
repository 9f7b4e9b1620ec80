// Predictor: loads an artifact once and serves many threads. predict, evaluate, serve, explain and
// optimize all go through it. Thread-safe after construction.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "kiln/artifact/artifact.h"

namespace kiln::artifact {

struct Prediction {
  int64_t label_id = 0;
  std::string label;
  float probability = 0;
  /// The k most probable (label, probability), descending; k = the top_k asked for.
  std::vector<std::pair<std::string, float>> top_k;
};

struct PredictorOptions {
  /// Texts per forward pass. Default 256.
  int64_t batch_size = 256;
};

class Predictor {
 public:
  explicit Predictor(const std::string& artifact_dir, PredictorOptions options = {});
  explicit Predictor(Artifact artifact, PredictorOptions options = {});

  /// Class probabilities [texts, classes], float32, rows in input order.
  [[nodiscard]] torch::Tensor predict_proba(const std::vector<std::string>& texts) const;
  /// Top label and the top_k (>= 1, clamped to the number of classes) for each text.
  [[nodiscard]] std::vector<Prediction> predict(const std::vector<std::string>& texts, int top_k = 1) const;

  [[nodiscard]] const Manifest& manifest() const { return artifact_.manifest; }
  [[nodiscard]] const std::vector<std::string>& labels() const { return artifact_.manifest.labels; }
  [[nodiscard]] const text::Featurizer& featurizer() const { return *artifact_.featurizer; }

 private:
  Artifact artifact_;
  PredictorOptions options_;
};

}  // namespace kiln::artifact
