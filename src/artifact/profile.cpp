#include "kiln/artifact/profile.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "kiln/core/utf8.h"

namespace kiln::artifact {

const std::vector<int64_t>& length_bin_edges() {
  static const std::vector<int64_t> edges = {0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
  return edges;
}

nlohmann::json compute_data_profile(const std::vector<std::string>& texts, const std::vector<std::string>& labels,
                                    const text::Featurizer& featurizer, const text::CsrMatrix<float>& features,
                                    int top_k) {
  const double n = std::max<double>(1.0, static_cast<double>(texts.size()));
  std::map<std::string, int64_t> label_counts;
  for (const auto& l : labels) ++label_counts[l];
  nlohmann::json label_dist = nlohmann::json::object();
  for (const auto& [l, c] : label_counts) label_dist[l] = static_cast<double>(c) / n;

  const auto& edges = length_bin_edges();
  std::vector<int64_t> bins(edges.size(), 0);
  double length_sum = 0;
  for (const auto& t : texts) {
    const auto len = static_cast<int64_t>(core::utf8_length(t));
    length_sum += static_cast<double>(len);
    auto it = std::upper_bound(edges.begin(), edges.end(), len);
    ++bins[static_cast<std::size_t>(std::distance(edges.begin(), it) - 1)];
  }
  std::vector<double> shares(bins.size());
  for (std::size_t i = 0; i < bins.size(); ++i) shares[i] = static_cast<double>(bins[i]) / n;

  std::vector<int64_t> df(static_cast<std::size_t>(featurizer.dim()), 0);
  for (std::size_t k = 0; k < features.indices.size(); ++k) ++df[static_cast<std::size_t>(features.indices[k])];
  std::vector<int64_t> order(df.size());
  std::iota(order.begin(), order.end(), 0);
  const std::size_t keep = std::min<std::size_t>(static_cast<std::size_t>(std::max(top_k, 0)), order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int64_t a, int64_t b) { return df[a] != df[b] ? df[a] > df[b] : a < b; });
  nlohmann::json top = nlohmann::json::array();
  for (std::size_t i = 0; i < keep && df[static_cast<std::size_t>(order[i])] > 0; ++i) {
    top.push_back({{"feature", featurizer.feature_name(order[i])},
                   {"index", order[i]},
                   {"doc_share", static_cast<double>(df[static_cast<std::size_t>(order[i])]) / n}});
  }
  return {{"n", texts.size()},
          {"label_distribution", label_dist},
          {"text_length", {{"edges", edges}, {"shares", shares}, {"mean", length_sum / n}}},
          {"top_features", top},
          {"nnz_per_row_mean", static_cast<double>(features.indices.size()) / n}};
}

}  // namespace kiln::artifact
