#include "importance_window.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/core/error.h"
#include "kiln/nn/input_spec.h"

namespace kiln::serve {

std::unique_ptr<ImportanceWindow> ImportanceWindow::load(const artifact::Predictor& predictor, std::size_t capacity,
                                                         std::size_t top_k) {
  const auto path = std::filesystem::path(predictor.dir()) / "importance.json";
  auto linear = predictor.model()->linear_parts();
  if (predictor.dir().empty() || !linear || !std::filesystem::exists(path)) return nullptr;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw ArtifactError(path.string() + ": not valid JSON (" + e.what() + "); rewrite it with kiln explain ARTIFACT --global");
  }
  if (j.value("method", "") != "linear" || !j.contains("overall") || !j["overall"].is_array()) return nullptr;
  std::unordered_map<std::string, double> wanted;
  std::vector<std::string> order;
  for (const auto& f : j["overall"]) {
    if (order.size() == top_k) break;
    if (!f.contains("feature") || !f.contains("mean_abs")) continue;
    order.push_back(f["feature"].get<std::string>());
    wanted[order.back()] = f["mean_abs"].get<double>();
  }
  const data::Dataset heldout = artifact::load_heldout(predictor.dir());
  if (order.empty() || heldout.size() == 0) return nullptr;
  const auto& pre = *predictor.preprocessors().front();
  const torch::Tensor table = linear->table.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  const int64_t features = table.size(0), classes = table.size(1);
  std::unordered_map<std::string, int64_t> column_of;
  for (int64_t c = 0; c < features && column_of.size() < order.size(); ++c) {
    std::string name = pre.feature_name(c);
    if (name.empty()) name = "feature:" + std::to_string(c);
    if (wanted.count(name)) column_of.emplace(std::move(name), c);
  }
  std::unique_ptr<ImportanceWindow> w(new ImportanceWindow());
  w->capacity_ = std::max<std::size_t>(1, capacity);
  w->classes_ = classes;
  std::unordered_map<int64_t, std::size_t> slot;
  for (const auto& name : order) {
    const auto it = column_of.find(name);
    if (it == column_of.end()) continue;  // "(absent features)" or a renamed feature
    slot[it->second] = w->columns_.size();
    w->columns_.push_back(it->second);
    w->training_.push_back(wanted[name]);
    for (int64_t k = 0; k < classes; ++k) w->weight_.push_back(table.data_ptr<float>()[it->second * classes + k]);
  }
  if (w->columns_.empty()) return nullptr;
  w->mean_.assign(w->columns_.size(), 0.0);
  const nn::Batch batch = predictor.encode(heldout);
  const auto& idx = batch.at(nn::kBagIndices);
  const auto& val = batch.at(nn::kBagWeights);
  for (int64_t k = 0; k < idx.size(0); ++k) {
    const auto it = slot.find(idx.data_ptr<int64_t>()[k]);
    if (it != slot.end()) w->mean_[it->second] += val.data_ptr<float>()[k];
  }
  for (auto& m : w->mean_) m /= static_cast<double>(heldout.size());
  w->sums_.assign(w->columns_.size(), 0.0);
  return w;
}

void ImportanceWindow::observe(const int64_t* columns, const float* values, int64_t count) {
  std::vector<double> row(columns_.size());
  for (std::size_t s = 0; s < columns_.size(); ++s) {
    double x = 0;
    for (int64_t k = 0; k < count; ++k) {
      if (columns[k] == columns_[s]) x += values[k];
    }
    double total = 0;
    for (int64_t c = 0; c < classes_; ++c) total += std::abs(weight_[s * static_cast<std::size_t>(classes_) + static_cast<std::size_t>(c)] * (x - mean_[s]));
    row[s] = total / static_cast<double>(classes_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (rows_.size() == capacity_) {
    for (std::size_t s = 0; s < sums_.size(); ++s) sums_[s] -= rows_.front()[s];
    rows_.pop_front();
  }
  for (std::size_t s = 0; s < sums_.size(); ++s) sums_[s] += row[s];
  rows_.push_back(std::move(row));
}

std::optional<double> ImportanceWindow::shift() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (rows_.empty()) return std::nullopt;
  double live = 0, train = 0;
  for (std::size_t s = 0; s < sums_.size(); ++s) {
    live += std::max(0.0, sums_[s]);
    train += training_[s];
  }
  if (live <= 0 || train <= 0) return live == train ? 0.0 : 1.0;
  double tv = 0;
  for (std::size_t s = 0; s < sums_.size(); ++s) tv += std::abs(std::max(0.0, sums_[s]) / live - training_[s] / train);
  return 0.5 * tv;
}

}  // namespace kiln::serve
