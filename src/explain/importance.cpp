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

/// The `top` largest of `values` (by slot, divided by `rows`; only positive ones) with their names,
/// descending, ties by name.
std::vector<std::pair<std::string, double>> ranked(const std::vector<std::string>& names, const double* values,
                                                   std::size_t stride, double rows, std::size_t top) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (values[i * stride] > 0) order.push_back(i);
  }
  auto before = [&](std::size_t a, std::size_t b) {
    const double va = values[a * stride] / rows, vb = values[b * stride] / rows;
    return va != vb ? va > vb : names[a] < names[b];
  };
  const std::size_t n = std::min(top, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(), before);
  std::vector<std::pair<std::string, double>> out;
  out.reserve(n);
  for (std::size_t k = 0; k < n; ++k) out.emplace_back(names[order[k]], values[order[k] * stride] / rows);
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
  write_importance(dir, explainer.global_importance(heldout, kImportanceTop), kImportanceTop);
  return true;
}

GlobalImportance Explainer::global_importance(const data::Examples& examples, std::size_t top) const {
  GlobalImportance g;
  g.method = method_;
  g.space = options_.space;
  g.rows = static_cast<int64_t>(examples.size());
  g.labels = predictor_.labels();
  const auto c = g.labels.size();
  if (g.rows == 0) {
    g.classes.resize(c);
    return g;
  }
  // Sums of |φ| by feature name: names[s] and sums[s * c + k] for slot s and class k.
  std::vector<std::string> names;
  std::unordered_map<std::string, std::size_t> slot_of;
  std::vector<double> sums;
  auto slot = [&](std::string name) {
    const auto [it, added] = slot_of.emplace(std::move(name), names.size());
    if (added) {
      names.push_back(it->first);
      sums.resize(sums.size() + c, 0.0);
    }
    return it->second;
  };
  if (method_ == Method::kLinear) {
    // Σ_rows |w_jc (x_j − μ_j)| = Σ_{rows with x_j ≠ 0} |w_jc (x_j − μ_j)| + (rows without j)·|w_jc μ_j|.
    const nn::Batch batch = predictor_.encode(examples);
    const auto& idx = batch.at(nn::kBagIndices);
    const auto& off = batch.at(nn::kBagOffsets);
    const auto& wts = batch.at(nn::kBagWeights);
    const int64_t nnz = idx.size(0);
    const int64_t* ip = idx.data_ptr<int64_t>();
    const int64_t* op = off.data_ptr<int64_t>();
    const float* xp = wts.data_ptr<float>();
    const std::size_t features = mean_.size();
    std::vector<double> present(features * c, 0.0);  // Σ over the rows with x_j ≠ 0, per class
    std::vector<int64_t> rows_with(features, 0);
    std::vector<double> x(features, 0.0);  // this row's values, dense
    std::vector<char> in_row(features, 0);
    std::vector<int64_t> row_features;
    const float* wp = weight_.data_ptr<float>();
    for (int64_t r = 0; r < batch.size(); ++r) {
      const int64_t begin = op[r];
      const int64_t end = r + 1 < off.size(0) ? op[r + 1] : nnz;
      row_features.clear();
      for (int64_t k = begin; k < end; ++k) {
        const auto j = static_cast<std::size_t>(ip[k]);
        if (!in_row[j]) {
          in_row[j] = 1;
          x[j] = 0.0;
          row_features.push_back(ip[k]);
        }
        x[j] += xp[k];
      }
      for (const int64_t jj : row_features) {
        const auto j = static_cast<std::size_t>(jj);
        in_row[j] = 0;
        const double xj = x[j];
        if (xj == 0) continue;
        ++rows_with[j];
        const double mj = mean_[j];
        double* s = present.data() + j * c;
        for (std::size_t k = 0; k < c; ++k) s[k] += std::abs(wp[j * c + k] * (xj - mj));
      }
    }
    const auto& pre = *predictor_.preprocessors().front();
    for (std::size_t j = 0; j < features; ++j) {
      if (mean_[j] == 0 && rows_with[j] == 0) continue;
      const int64_t without = g.rows - rows_with[j];
      std::string name = pre.feature_name(static_cast<int64_t>(j));
      if (name.empty()) name = "feature:" + std::to_string(j);
      std::size_t at = names.size();  // the name's slot, made on its first positive value
      for (std::size_t k = 0; k < c; ++k) {
        const double w = wp[j * c + k];
        const double v = present[j * c + k] + static_cast<double>(without) * std::abs(w * mean_[j]);
        if (!(v > 0)) continue;
        if (at == names.size()) at = slot(name);
        sums[at * c + k] += v;
      }
    }
  } else {
    // Words by their lowercased form: mean over all rows (a word absent from a row counts 0 there).
    for (const auto& a : explain_all(examples)) {
      for (std::size_t f = 0; f < a.features.size(); ++f) {
        const std::size_t at =
            slot(a.features[f].spans.empty() ? a.features[f].feature : text::python_lower(a.features[f].feature));
        for (std::size_t k = 0; k < c; ++k) sums[at * c + k] += std::abs(a.values[f * c + k]);
      }
    }
  }
  const auto rows = static_cast<double>(g.rows);
  std::vector<double> overall(names.size(), 0.0);
  for (std::size_t k = 0; k < c; ++k) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (sums[i * c + k] > 0) overall[i] += sums[i * c + k] / static_cast<double>(c);
    }
    g.classes.push_back(ranked(names, sums.data() + k, c, rows, top));
  }
  g.overall = ranked(names, overall.data(), 1, rows, top);
  return g;
}

}  // namespace kiln::explain
