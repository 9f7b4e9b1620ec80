// k-means as scikit-learn 1.2's KMeans(algorithm="lloyd") runs it (sklearn/cluster/_kmeans.py:
// _kmeans_plusplus, _kmeans_single_lloyd, _relocate_empty_clusters_dense) and shap.kmeans's
// summary (shap/utils/_legacy.py). Distances by matrix products in float64, as scikit-learn's.
#include "kiln/explain/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::explain {
namespace {

// Squared distances [n, k] of rows to centres.
torch::Tensor squared_distances(const torch::Tensor& x, const torch::Tensor& x_norms, const torch::Tensor& c) {
  return (x_norms.unsqueeze(1) - 2.0 * x.matmul(c.t()) + c.pow(2).sum(1).unsqueeze(0)).clamp_min(0.0);
}

// scikit-learn's _kmeans_plusplus with n_local_trials = 2 + floor(ln k).
torch::Tensor kmeans_plusplus(const torch::Tensor& x, const torch::Tensor& x_norms, int64_t k, std::mt19937_64& rng) {
  const int64_t n = x.size(0);
  const int64_t trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  torch::Tensor centers = torch::empty({k, x.size(1)}, torch::kFloat64);
  const int64_t first = std::uniform_int_distribution<int64_t>(0, n - 1)(rng);
  centers[0].copy_(x[first]);
  torch::Tensor closest = squared_distances(x, x_norms, x[first].unsqueeze(0)).select(1, 0).contiguous();  // [n]
  double potential = closest.sum().item<double>();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int64_t c = 1; c < k; ++c) {
    const torch::Tensor cumulative = closest.cumsum(0).contiguous();
    const double* cp = cumulative.data_ptr<double>();
    std::vector<int64_t> candidates(static_cast<std::size_t>(trials));
    for (auto& id : candidates) {
      const double v = unit(rng) * potential;
      id = std::min<int64_t>(std::lower_bound(cp, cp + n, v) - cp, n - 1);  // np.searchsorted (left)
    }
    const torch::Tensor ids = torch::tensor(candidates, torch::kInt64);
    const torch::Tensor to_candidates =
        torch::minimum(squared_distances(x, x_norms, x.index_select(0, ids)).t(), closest.unsqueeze(0));  // [trials, n]
    const torch::Tensor pots = to_candidates.sum(1);
    const int64_t best = pots.argmin().item<int64_t>();
    potential = pots[best].item<double>();
    closest = to_candidates[best].contiguous();
    centers[c].copy_(x[candidates[static_cast<std::size_t>(best)]]);
  }
  return centers;
}

// One Lloyd run from `centers` (scikit-learn's _kmeans_single_lloyd).
KMeansResult lloyd(const torch::Tensor& x, const torch::Tensor& x_norms, torch::Tensor centers, int64_t max_iter,
                   double tol) {
  const int64_t n = x.size(0), k = centers.size(0);
  torch::Tensor labels = torch::full({n}, -1, torch::kInt64), old = labels.clone();
  bool strict = false;
  int64_t it = 0;
  for (; it < max_iter; ++it) {
    const torch::Tensor d2 = squared_distances(x, x_norms, centers);
    labels = d2.argmin(1);
    torch::Tensor sums = torch::zeros_like(centers).index_add_(0, labels, x);
    torch::Tensor counts = torch::zeros({k}, torch::kFloat64).index_add_(0, labels, torch::ones({n}, torch::kFloat64));
    // Empty clusters take the rows farthest from their centres, farthest first.
    const torch::Tensor empty = (counts == 0).nonzero().reshape({-1});
    if (empty.numel() > 0) {
      const torch::Tensor own = d2.gather(1, labels.unsqueeze(1)).reshape({-1});
      const torch::Tensor far = std::get<1>(own.topk(empty.numel()));
      for (int64_t e = 0; e < empty.numel(); ++e) {
        const int64_t row = far[e].item<int64_t>(), to = empty[e].item<int64_t>(), from = labels[row].item<int64_t>();
        sums[from] -= x[row];
        counts[from] -= 1;
        sums[to].copy_(x[row]);
        counts[to] = 1;
      }
    }
    const torch::Tensor next = sums / counts.clamp_min(1e-300).unsqueeze(1);
    const double shift = (next - centers).pow(2).sum().item<double>();
    centers = next;
    if (torch::equal(labels, old)) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    old = labels.clone();
  }
  if (!strict) labels = squared_distances(x, x_norms, centers).argmin(1);
  KMeansResult r;
  r.iterations = std::min(it + 1, max_iter);
  r.inertia = (x - centers.index_select(0, labels)).pow(2).sum().item<double>();
  r.centers = centers;
  r.labels = labels;
  return r;
}

}  // namespace

void KMeansOptions::validate() const {
  if (k < 1) throw ConfigError("k (clusters) must be >= 1, got " + std::to_string(k));
  if (max_iter < 1) throw ConfigError("max_iter must be >= 1, got " + std::to_string(max_iter));
  if (n_init < 1) throw ConfigError("n_init must be >= 1, got " + std::to_string(n_init));
  if (!(tol >= 0)) throw ConfigError("tol must be >= 0, got " + std::to_string(tol));
}

KMeansResult kmeans(const torch::Tensor& data, const KMeansOptions& options, const torch::Tensor& init) {
  options.validate();
  if (data.dim() != 2) throw ConfigError("k-means needs rows [n, d], got " + std::to_string(data.dim()) + " dimensions");
  const torch::Tensor x = data.to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t n = x.size(0);
  if (options.k > n) {
    throw ConfigError("k-means: k = " + std::to_string(options.k) + " clusters need at least as many rows, got " +
                      std::to_string(n) + "; lower k or give more background rows");
  }
  if (init.defined() && (init.dim() != 2 || init.size(0) != options.k || init.size(1) != x.size(1))) {
    throw ConfigError("k-means: init must be [k = " + std::to_string(options.k) + ", " + std::to_string(x.size(1)) +
                      "] centres");
  }
  // Relative tolerance: tol × mean column variance (numpy's var, ddof 0).
  const double tol = x.size(1) == 0 ? 0.0 : x.var(0, /*unbiased=*/false).mean().item<double>() * options.tol;
  const torch::Tensor x_norms = x.pow(2).sum(1);
  if (init.defined()) return lloyd(x, x_norms, init.to(torch::kCPU, torch::kFloat64).contiguous(), options.max_iter, tol);
  std::mt19937_64 rng(options.seed);
  KMeansResult best;
  bool have = false;
  for (int64_t run = 0; run < options.n_init; ++run) {
    KMeansResult r = lloyd(x, x_norms, kmeans_plusplus(x, x_norms, options.k, rng), options.max_iter, tol);
    if (!have || r.inertia < best.inertia) {
      best = std::move(r);
      have = true;
    }
  }
  return best;
}

WeightedRows summarize_background(const torch::Tensor& data, const KMeansOptions& options, const torch::Tensor& init) {
  const KMeansResult r = kmeans(data, options, init);
  const torch::Tensor x = data.to(torch::kCPU, torch::kFloat64).contiguous();
  WeightedRows out;
  out.rows = r.centers.clone();
  if (options.round_values) {
    for (int64_t c = 0; c < out.rows.size(0); ++c) {
      const torch::Tensor nearest = (x - out.rows[c].unsqueeze(0)).abs().argmin(0);  // [d]: the first closest row
      out.rows[c].copy_(x.gather(0, nearest.unsqueeze(0)).squeeze(0));
    }
  }
  const int64_t k = r.centers.size(0);
  out.weights = torch::zeros({k}, torch::kFloat64).index_add_(0, r.labels, torch::ones({x.size(0)}, torch::kFloat64));
  out.weights /= static_cast<double>(x.size(0));
  return out;
}

}  // namespace kiln::explain
