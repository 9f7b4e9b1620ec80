// Global importance: mean |φ| per feature and class over a data set, and importance.json.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unordered_map>

#include "kiln/core/atomic_output.h"
#include "kiln/explain/explainer.h"
#include "kiln/nn/input_spec.h"
#include "kiln/text/unicode.h"

namespace kiln::explain {
namespace {

std::vector<std::pair<std::string, double>> sorted(std::unordered_map<std::string, double> sums, double rows) {
  std::vector<std::pair<std::string, double>> out;
  out.reserve(sums.size());
  for (auto& [k, v] : sums) {
    if (v > 0) out.emplace_back(k, v / rows);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  return out;
}

nlohmann::json feature_list(const std::vector<std::pair<std::string, double>>& list, std::size_t top) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t k = 0; k < list.size() && k < top; ++k) {
    out.push_back({{"feature", list[k].first}, {"mean_abs", list[k].second}});
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const GlobalImportance& g, std::size_t top) {
  nlohmann::json classes = nlohmann::json::array();
  for (std::size_t c = 0; c < g.classes.size(); ++c) {
    classes.push_back({{"label", g.labels[c]}, {"features", feature_list(g.classes[c], top)}});
  }
  return {{"method", method_name(g.method)}, {"space", space_name(g.space)}, {"rows", g.rows},
          {"classes", classes}, {"overall", feature_list(g.overall, top)}};
}

void write_importance(const std::string& dir, const GlobalImportance& g, std::size_t top) {
  core::write_file_atomic(std::filesystem::path(dir) / "importance.json", to_json(g, top).dump(2) + "\n");
}

bool write_linear_importance(const artifact::Artifact& artifact, const data::Examples& heldout, const std::string& dir) {
  if (heldout.size() == 0 || !artifact.model || !artifact.model->linear_parts()) return false;
  const artifact::Predictor predictor(artifact);
  ExplainOptions o;
  o.method = Method::kLinear;
  o.background = heldout;
  const Explainer explainer(predictor, o);
  write_importance(dir, explainer.global_importance(heldout));
  return true;
}

GlobalImportance Explainer::global_importance(const data::Examples& examples) const {
  GlobalImportance g;
  g.method = method_;
  g.space = options_.space;
  g.rows = static_cast<int64_t>(examples.size());
  g.labels = predictor_.labels();
  const auto c = g.labels.size();
  std::vector<std::unordered_map<std::string, double>> sums(c);
  if (g.rows == 0) {
    g.classes.resize(c);
    return g;
  }
  if (method_ == Method::kLinear) {
    // Σ_rows |w_jc (x_j − μ_j)| = Σ_{rows with x_j ≠ 0} |w_jc (x_j − μ_j)| + (rows without j)·|w_jc μ_j|.
    const nn::Batch batch = predictor_.encode(examples);
    const auto& idx = batch.at(nn::kBagIndices);
    const auto& off = batch.at(nn::kBagOffsets);
    const auto& wts = batch.at(nn::kBagWeights);
    const int64_t nnz = idx.size(0);
    std::unordered_map<int64_t, std::vector<double>> seen;  // feature -> Σ over its rows per class
    std::unordered_map<int64_t, int64_t> rows_with;
    const float* wp = weight_.data_ptr<float>();
    for (int64_t r = 0; r < batch.size(); ++r) {
      const int64_t begin = off.data_ptr<int64_t>()[r];
      const int64_t end = r + 1 < off.size(0) ? off.data_ptr<int64_t>()[r + 1] : nnz;
      std::unordered_map<int64_t, double> x;
      for (int64_t k = begin; k < end; ++k) x[idx.data_ptr<int64_t>()[k]] += wts.data_ptr<float>()[k];
      for (const auto& [j, xj] : x) {
        if (xj == 0) continue;
        auto& s = seen[j];
        s.resize(c);
        ++rows_with[j];
        const double mj = mean_[static_cast<std::size_t>(j)];
        for (std::size_t k = 0; k < c; ++k) s[k] += std::abs(wp[j * static_cast<int64_t>(c) + static_cast<int64_t>(k)] * (xj - mj));
      }
    }
    const auto& pre = *predictor_.preprocessors().front();
    for (std::size_t j = 0; j < mean_.size(); ++j) {
      const auto it = seen.find(static_cast<int64_t>(j));
      if (mean_[j] == 0 && it == seen.end()) continue;
      const int64_t without = g.rows - (it == seen.end() ? 0 : rows_with[static_cast<int64_t>(j)]);
      std::string name = pre.feature_name(static_cast<int64_t>(j));
      if (name.empty()) name = "feature:" + std::to_string(j);
      for (std::size_t k = 0; k < c; ++k) {
        const double w = wp[static_cast<int64_t>(j) * static_cast<int64_t>(c) + static_cast<int64_t>(k)];
        const double v = (it == seen.end() ? 0.0 : it->second[k]) + static_cast<double>(without) * std::abs(w * mean_[j]);
        if (v > 0) sums[k][name] += v;
      }
    }
  } else {
    // Words by their lowercased form: mean over all rows (a word absent from a row counts 0 there).
    for (const auto& a : explain_all(examples)) {
      for (std::size_t f = 0; f < a.features.size(); ++f) {
        const std::string name = a.features[f].spans.empty() ? a.features[f].feature : text::python_lower(a.features[f].feature);
        for (std::size_t k = 0; k < c; ++k) sums[k][name] += std::abs(a.values[f * c + k]);
      }
    }
  }
  std::unordered_map<std::string, double> overall;
  for (std::size_t k = 0; k < c; ++k) {
    for (const auto& [name, v] : sums[k]) overall[name] += v / static_cast<double>(c);
    g.classes.push_back(sorted(std::move(sums[k]), static_cast<double>(g.rows)));
  }
  g.overall = sorted(std::move(overall), static_cast<double>(g.rows));
  return g;
}

}  // namespace kiln::explain
