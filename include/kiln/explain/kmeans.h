// k-means (Lloyd's algorithm from k-means++ starts, as scikit-learn's KMeans computes it) and the
// background summary Kernel SHAP takes from it, as shap.kmeans makes one: the cluster centres,
// each coordinate rounded to the nearest value its column takes in the data, weighted by the
// share of rows in their cluster. Deterministic for a seed. Thread-safe (no shared state).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace kiln::explain {

struct KMeansOptions {
  /// Clusters, >= 1 (at most the number of rows). Default 10 (shap's examples).
  int64_t k = 10;
  /// Lloyd iterations per run, >= 1. Default 300 (scikit-learn).
  int64_t max_iter = 300;
  /// Runs from different k-means++ starts; the lowest inertia wins. >= 1. Default 10
  /// (scikit-learn 1.2's n_init).
  int64_t n_init = 10;
  /// A run stops when the squared centre shift summed over clusters is <= tol × the mean over
  /// columns of the data's variance (scikit-learn's relative tolerance), or when no label
  /// changes. >= 0. Default 1e-4.
  double tol = 1e-4;
  /// Seed of the k-means++ sampler (std::mt19937_64). Default 0.
  uint64_t seed = 0;
  /// shap.kmeans's round_values: replace each centre coordinate by the closest value of that
  /// column in the data (the first such row on ties), so that a summary row holds values real
  /// rows have. Default true.
  bool round_values = true;

  /// Throws ConfigError naming the field ("k", "max_iter", "n_init", "tol") and the value.
  void validate() const;
};

struct KMeansResult {
  torch::Tensor centers;  ///< [k, d] float64
  torch::Tensor labels;   ///< [n] int64: the centre each row is assigned to
  double inertia = 0;     ///< Σ squared distance of each row to its centre
  int64_t iterations = 0; ///< Lloyd iterations of the winning run
};

/// k-means of the rows of `x` ([n, d], converted to float64). With `init` ([k, d]) one Lloyd run
/// starts from those centres (n_init ignored), as KMeans(init=array, n_init=1,
/// algorithm="lloyd") does. An empty cluster takes the row farthest from its centre (scikit-
/// learn's relocation). Throws ConfigError when k > n or `init` has another shape.
[[nodiscard]] KMeansResult kmeans(const torch::Tensor& x, const KMeansOptions& options,
                                  const torch::Tensor& init = torch::Tensor());

/// A weighted background: rows and their weights (summing to 1).
struct WeightedRows {
  torch::Tensor rows;     ///< [k, d] float64
  torch::Tensor weights;  ///< [k] float64
};

/// shap.kmeans(x, k): the k-means centres (rounded when options.round_values), weighted by the
/// fraction of rows in each cluster. `init` as for kmeans().
[[nodiscard]] WeightedRows summarize_background(const torch::Tensor& x, const KMeansOptions& options,
                                                const torch::Tensor& init = torch::Tensor());

}  // namespace kiln::explain
