// Live feature importance for linear-family models: on the texts the server sees, |φ| (exact linear
// SHAP, mean over classes) of the artifact's training-time top-K features (importance.json
// "overall"), over a sliding window, and how far its distribution moved from training's
// (kiln_feature_importance_shift).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "kiln/artifact/predictor.h"

namespace kiln::serve {

/// Thread-safe after construction.
class ImportanceWindow {
 public:
  /// The window for `predictor`'s artifact, or nullptr unless the model is linear-family and the
  /// artifact has importance.json and a held-out sample (E[x] for the attributions). Throws what
  /// reading them throws (ArtifactError, DataError).
  static std::unique_ptr<ImportanceWindow> load(const artifact::Predictor& predictor, std::size_t capacity,
                                                std::size_t top_k = 20);

  /// Adds one text, given its bag (columns and values), evicting the oldest when full.
  void observe(const int64_t* columns, const float* values, int64_t count);
  /// Total variation distance, in [0, 1], between the shares of mean |φ| over the top-K features in
  /// training and in the window: 0 = the same importance profile, 1 = disjoint. nullopt while the
  /// window is empty.
  [[nodiscard]] std::optional<double> shift() const;

 private:
  ImportanceWindow() = default;
  std::size_t capacity_ = 1;
  int64_t classes_ = 0;
  std::vector<int64_t> columns_;  // the K features' columns
  std::vector<double> training_;  // their training mean |φ|
  std::vector<double> mean_;      // E[x] of each over the held-out sample
  std::vector<double> weight_;    // [K, classes]
  mutable std::mutex mu_;
  std::deque<std::vector<double>> rows_;
  std::vector<double> sums_;
};

}  // namespace kiln::serve
