// Kernel SHAP with a background on bag models, as shap's KernelExplainer(f, data) computes it on
// a feature matrix: the features are the text's bag features (columns with a value) and one group,
// "(absent features)", of every other column; a coalition keeps its features at the text's values
// and gives the hidden ones each background row's values, f(z) = Σ_b w_b f(x_z, b_rest). The bags
// are built directly (no text is re-encoded) and forwarded batch_size coalitions × rows at a time.
// For a linear model this equals exact interventional linear SHAP with E[x] = Σ_b w_b b.
#include <algorithm>
#include <map>

#include "bag_row.h"
#include "kiln/core/error.h"
#include "kiln/explain/explainer.h"
#include "text_features_of.h"

namespace kiln::explain {
namespace {

/// Background rows × columns kept dense for k-means (float64: 8 bytes each).
constexpr int64_t kMaxBackgroundCells = 50'000'000;

}  // namespace

void Explainer::init_background() {
  const auto& inputs = predictor_.manifest().inputs.tensors;
  const bool bag_only = !inputs.empty() && std::all_of(inputs.begin(), inputs.end(), [](const nn::TensorSpec& t) {
    return t.name == nn::kBagIndices || t.name == nn::kBagOffsets || t.name == nn::kBagWeights;
  });
  if (!bag_only) {
    throw ConfigError("--method kernel with --background gives hidden bag features the background's values, and this "
                      "model (family '" + predictor_.manifest().model.family + "') reads no bag of features only; drop "
                      "--background (Kernel SHAP then masks words)");
  }
  const nn::Batch batch = predictor_.encode(options_.background);
  std::vector<std::map<int64_t, double>> rows;
  std::map<int64_t, int64_t> column;  // feature -> dense column
  for (int64_t r = 0; r < batch.size(); ++r) {
    rows.push_back(bag_features(batch, r));
    for (const auto& [j, v] : rows.back()) column.emplace(j, 0);
  }
  const auto n = static_cast<int64_t>(rows.size());
  const auto d = static_cast<int64_t>(column.size());
  if (n * d > kMaxBackgroundCells) {
    throw ConfigError("--background has " + std::to_string(n) + " rows over " + std::to_string(d) +
                      " features, more than Kernel SHAP keeps dense (" + std::to_string(kMaxBackgroundCells) +
                      " values); give fewer background rows (a few hundred are plenty with --background-k)");
  }
  for (auto& [j, c] : column) {
    c = static_cast<int64_t>(bg_columns_.size());
    bg_columns_.push_back(j);
  }
  torch::Tensor dense = torch::zeros({n, d}, torch::kFloat64);
  double* dp = dense.data_ptr<double>();
  for (int64_t r = 0; r < n; ++r) {
    for (const auto& [j, v] : rows[static_cast<std::size_t>(r)]) dp[r * d + column.at(j)] = v;
  }
  if (options_.background_summary) {
    const WeightedRows s = summarize_background(dense, *options_.background_summary);
    bg_rows_ = s.rows.contiguous();
    bg_weights_.assign(s.weights.data_ptr<double>(), s.weights.data_ptr<double>() + s.weights.numel());
  } else {
    bg_rows_ = dense;
    bg_weights_.assign(static_cast<std::size_t>(n), 1.0 / static_cast<double>(n));
  }
}

ClassAttributions Explainer::kernel_bag_one(const nn::Batch& batch, int64_t row, const std::string* text) const {
  const std::map<int64_t, double> present = bag_features(batch, row);
  std::vector<int64_t> features;
  std::vector<double> x;
  for (const auto& [j, v] : present) {
    features.push_back(j);
    x.push_back(v);
  }
  const auto f = static_cast<int64_t>(features.size());
  const int64_t m = f + 1;  // + "(absent features)"
  const int64_t k = bg_rows_.size(0), d = bg_rows_.size(1);
  // Per background row: its values on the text's features, and its other non-zero columns.
  std::vector<double> on_features(static_cast<std::size_t>(k * f), 0.0);
  std::vector<std::vector<std::pair<int64_t, float>>> rest(static_cast<std::size_t>(k));
  const double* bp = bg_rows_.data_ptr<double>();
  for (int64_t b = 0; b < k; ++b) {
    for (int64_t c = 0; c < d; ++c) {
      const double v = bp[b * d + c];
      if (v == 0) continue;
      const int64_t j = bg_columns_[static_cast<std::size_t>(c)];
      const auto it = present.find(j);
      if (it != present.end()) {
        on_features[static_cast<std::size_t>(b * f + std::distance(present.begin(), it))] = v;
      } else {
        rest[static_cast<std::size_t>(b)].emplace_back(j, static_cast<float>(v));
      }
    }
  }
  const double t = predictor_.manifest().temperature();
  const auto classes = static_cast<int64_t>(predictor_.labels().size());
  const torch::Tensor weights = torch::tensor(bg_weights_, torch::kFloat64).reshape({1, k, 1});
  CoalitionValue value = [&](const torch::Tensor& masks) {
    const int64_t n = masks.size(0);
    const bool* mp = masks.data_ptr<bool>();
    torch::Tensor out = torch::empty({n, classes}, torch::kFloat64);
    std::vector<int64_t> indices, offsets;
    std::vector<float> values;
    for (int64_t start = 0; start < n; start += options_.batch_size) {
      const int64_t rows = std::min(options_.batch_size, n - start);
      indices.clear();
      offsets.clear();
      values.clear();
      for (int64_t r = start; r < start + rows; ++r) {
        const bool* z = mp + r * m;
        for (int64_t b = 0; b < k; ++b) {
          offsets.push_back(static_cast<int64_t>(indices.size()));
          for (int64_t q = 0; q < f; ++q) {
            const double v = z[q] ? x[static_cast<std::size_t>(q)] : on_features[static_cast<std::size_t>(b * f + q)];
            if (v == 0) continue;
            indices.push_back(features[static_cast<std::size_t>(q)]);
            values.push_back(static_cast<float>(v));
          }
          if (!z[f]) {  // absent features hidden: the background row's other columns
            for (const auto& [j, v] : rest[static_cast<std::size_t>(b)]) {
              indices.push_back(j);
              values.push_back(v);
            }
          }
        }
      }
      nn::Batch bags(rows * k);
      bags.set(nn::kBagIndices, torch::tensor(indices, torch::kInt64));
      bags.set(nn::kBagOffsets, torch::tensor(offsets, torch::kInt64));
      bags.set(nn::kBagWeights, torch::tensor(values, torch::kFloat32));
      torch::Tensor logits = predictor_.forward(bags).to(torch::kCPU, torch::kFloat64);
      if (options_.space == Space::kProbability) logits = torch::softmax(logits / t, 1);
      out.narrow(0, start, rows).copy_((logits.reshape({rows, k, classes}) * weights).sum(1));
    }
    return out;
  };
  const ShapValues shap = kernel_shap(m, value, options_.kernel);
  ClassAttributions out;
  out.base.assign(shap.base.data_ptr<double>(), shap.base.data_ptr<double>() + classes);
  out.output.assign(shap.output.data_ptr<double>(), shap.output.data_ptr<double>() + classes);
  const torch::Tensor values = shap.values.contiguous();
  out.values.assign(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  const auto& pre = *predictor_.preprocessors().front();
  const auto spans = spans_by_feature(pre, text);
  for (int64_t j : features) {
    out.features.push_back(feature_attribution(pre, j, spans));
  }
  Attribution rest_entry;
  rest_entry.feature = kAbsentFeatures;
  out.features.push_back(std::move(rest_entry));
  return out;
}

}  // namespace kiln::explain
