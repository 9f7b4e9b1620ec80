#include "kiln/serve/drift.h"

#include <algorithm>
#include <cmath>

#include "kiln/core/error.h"

namespace kiln::serve {

double population_stability_index(const std::vector<double>& expected, const std::vector<double>& actual,
                                  double floor) {
  if (expected.size() != actual.size()) {
    throw ConfigError("PSI needs the same bins on both sides; got " + std::to_string(expected.size()) + " and " +
                      std::to_string(actual.size()));
  }
  double psi = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = std::max(expected[i], floor);
    const double a = std::max(actual[i], floor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

namespace {

const nlohmann::json& field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw ConfigError("the artifact's data profile has no " + where + key +
                      "; retrain with this Kiln version to get a profile the drift monitor can use");
  }
  return j.at(key);
}

}  // namespace

DriftWindow::DriftWindow(const nlohmann::json& profile, std::size_t capacity) : capacity_(capacity) {
  if (capacity == 0) throw ConfigError("the drift window needs room for at least 1 text, got 0");
  const auto& tl = field(profile, "text_length", "");
  try {
    edges_ = field(tl, "edges", "text_length.").get<std::vector<int64_t>>();
    train_length_shares_ = field(tl, "shares", "text_length.").get<std::vector<double>>();
    for (const auto& f : field(profile, "top_features", "")) {
      top_names_.push_back(f.at("feature").get<std::string>());
      train_top_shares_.push_back(f.at("doc_share").get<double>());
    }
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(std::string("the artifact's data profile is malformed (") + e.what() +
                      "); retrain the model or restore kiln.json");
  }
  if (edges_.empty() || edges_.size() != train_length_shares_.size() || edges_.front() != 0 ||
      !std::is_sorted(edges_.begin(), edges_.end())) {
    throw ConfigError("the artifact's data profile has text_length edges and shares that do not match (" +
                      std::to_string(edges_.size()) + " edges from 0 upwards, " +
                      std::to_string(train_length_shares_.size()) + " shares expected equal)");
  }
  length_counts_.assign(edges_.size(), 0);
  top_counts_.assign(top_names_.size(), 0);
  ring_.reserve(std::min<std::size_t>(capacity_, 1 << 16));
}

std::size_t DriftWindow::length_bin(int64_t length) const {
  const auto it = std::upper_bound(edges_.begin(), edges_.end(), std::max<int64_t>(length, 0));
  return static_cast<std::size_t>(std::distance(edges_.begin(), it) - 1);
}

void DriftWindow::observe(const DriftSample& sample) {
  std::lock_guard<std::mutex> lock(mu_);
  auto apply = [&](const DriftSample& s, int sign) {
    length_counts_[length_bin(s.length)] += sign;
    oov_sum_ += sign * s.oov_rate;
    for (int32_t pos : s.top_features) {
      if (pos >= 0 && static_cast<std::size_t>(pos) < top_counts_.size()) top_counts_[static_cast<std::size_t>(pos)] += sign;
    }
  };
  if (ring_.size() < capacity_) {
    ring_.push_back(sample);
  } else {
    apply(ring_[next_], -1);
    ring_[next_] = sample;
  }
  next_ = (next_ + 1) % capacity_;
  apply(sample, +1);
}

DriftReport DriftWindow::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  DriftReport r;
  r.window = ring_.size();
  r.length_shares.assign(length_counts_.size(), 0.0);
  r.top_feature_shares.assign(top_counts_.size(), 0.0);
  if (r.window == 0) return r;
  const double n = static_cast<double>(r.window);
  for (std::size_t i = 0; i < length_counts_.size(); ++i) r.length_shares[i] = static_cast<double>(length_counts_[i]) / n;
  r.length_psi = population_stability_index(train_length_shares_, r.length_shares);
  r.oov_rate = std::max(0.0, oov_sum_ / n);
  double shift = 0;
  for (std::size_t i = 0; i < top_counts_.size(); ++i) {
    r.top_feature_shares[i] = static_cast<double>(top_counts_[i]) / n;
    shift += std::abs(r.top_feature_shares[i] - train_top_shares_[i]);
  }
  r.top_feature_shift = top_counts_.empty() ? 0.0 : shift / static_cast<double>(top_counts_.size());
  return r;
}

}  // namespace kiln::serve
