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

nlohmann::json compute_data_profile(const data::Dataset& train, const prep::Preprocessor& featurizer,
                                    const nn::Batch& encoded, int top_k) {
  const auto& texts = train.texts;
  const auto& labels = train.labels;
  const double n = std::max<double>(1.0, static_cast<double>(train.size()));
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

  const nn::TensorSpec* bag = featurizer.input_spec().find(nn::kBagIndices);
  const torch::Tensor indices = encoded.get(nn::kBagIndices);
  std::vector<int64_t> df(bag && indices.defined() ? static_cast<std::size_t>(bag->vocab_size) : 0, 0);
  const int64_t nnz = indices.defined() ? indices.numel() : 0;
  if (!df.empty()) {
    const auto idx = indices.to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t* ip = idx.data_ptr<int64_t>();
    for (int64_t k = 0; k < nnz; ++k) ++df[static_cast<std::size_t>(ip[k])];
  }
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
  nlohmann::json profile = {{"n", train.size()}, {"label_distribution", label_dist}};
  if (train.has_text()) profile["text_length"] = {{"edges", edges}, {"shares", shares}, {"mean", length_sum / n}};
  if (!df.empty()) {
    profile["top_features"] = top;
    profile["nnz_per_row_mean"] = static_cast<double>(nnz) / n;
  }
  return profile;
}

}  // namespace kiln::artifact
