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
  const bool images = profile.is_object() && profile.contains("image_intensity");
  if (!images || profile.contains("text_length")) {
    const auto& tl = field(profile, "text_length", "");
    try {
      edges_ = field(tl, "edges", "text_length.").get<std::vector<int64_t>>();
      train_length_shares_ = field(tl, "shares", "text_length.").get<std::vector<double>>();
      if (profile.contains("top_features")) {
        for (const auto& f : profile.at("top_features")) {
          top_names_.push_back(f.at("feature").get<std::string>());
          train_top_shares_.push_back(f.at("doc_share").get<double>());
        }
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
  }
  if (images) {
    auto read = [&](const char* key, std::vector<double>& edges, std::vector<double>& shares) {
      const auto& h = field(profile, key, "");
      try {
        edges = field(h, "edges", std::string(key) + ".").get<std::vector<double>>();
        shares = field(h, "shares", std::string(key) + ".").get<std::vector<double>>();
      } catch (const nlohmann::json::exception& e) {
        throw ConfigError(std::string("the artifact's data profile is malformed (") + e.what() +
                          "); retrain the model or restore kiln.json");
      }
      if (edges.empty() || edges.size() != shares.size() || edges.front() != 0 || !std::is_sorted(edges.begin(), edges.end())) {
        throw ConfigError(std::string("the artifact's data profile has ") + key +
                          " edges and shares that do not match; retrain the model or restore kiln.json");
      }
    };
    read("image_intensity", intensity_edges_, train_intensity_shares_);
    read("image_size", size_edges_, train_size_shares_);
  }
  length_counts_.assign(edges_.size(), 0);
  top_counts_.assign(top_names_.size(), 0);
  intensity_counts_.assign(intensity_edges_.size(), 0);
  size_counts_.assign(size_edges_.size(), 0);
  ring_.reserve(std::min<std::size_t>(capacity_, 1 << 16));
}

namespace {

std::size_t bin_of(const std::vector<double>& edges, double v) {
  const auto it = std::upper_bound(edges.begin(), edges.end(), std::max(v, 0.0));
  return static_cast<std::size_t>(std::distance(edges.begin(), it) - 1);
}

std::vector<double> shares_of(const std::vector<int64_t>& counts, int64_t n) {
  std::vector<double> out(counts.size(), 0.0);
  for (std::size_t i = 0; i < counts.size(); ++i) out[i] = n ? static_cast<double>(counts[i]) / static_cast<double>(n) : 0.0;
  return out;
}

}  // namespace

std::size_t DriftWindow::length_bin(int64_t length) const {
  const auto it = std::upper_bound(edges_.begin(), edges_.end(), std::max<int64_t>(length, 0));
  return static_cast<std::size_t>(std::distance(edges_.begin(), it) - 1);
}

void DriftWindow::observe(const DriftSample& sample) {
  std::lock_guard<std::mutex> lock(mu_);
  auto apply = [&](const DriftSample& s, int sign) {
    if (s.has_text && !edges_.empty()) {
      text_count_ += sign;
      length_counts_[length_bin(s.length)] += sign;
      oov_sum_ += sign * s.oov_rate;
      for (int32_t pos : s.top_features) {
        if (pos >= 0 && static_cast<std::size_t>(pos) < top_counts_.size()) top_counts_[static_cast<std::size_t>(pos)] += sign;
      }
    }
    if (s.has_image && !intensity_edges_.empty()) {
      image_count_ += sign;
      intensity_counts_[bin_of(intensity_edges_, s.intensity)] += sign;
      size_counts_[bin_of(size_edges_, s.pixels)] += sign;
      intensity_sum_ += sign * s.intensity;
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
  r.length_shares = shares_of(length_counts_, text_count_);
  r.top_feature_shares = shares_of(top_counts_, text_count_);
  if (text_count_ > 0) {
    const double n = static_cast<double>(text_count_);
    r.length_psi = population_stability_index(train_length_shares_, r.length_shares);
    r.oov_rate = std::max(0.0, oov_sum_ / n);
    double shift = 0;
    for (std::size_t i = 0; i < top_counts_.size(); ++i) shift += std::abs(r.top_feature_shares[i] - train_top_shares_[i]);
    r.top_feature_shift = top_counts_.empty() ? 0.0 : shift / static_cast<double>(top_counts_.size());
  }
  if (image_count_ > 0) {
    r.image_window = static_cast<std::size_t>(image_count_);
    r.intensity_psi = population_stability_index(train_intensity_shares_, shares_of(intensity_counts_, image_count_));
    r.size_psi = population_stability_index(train_size_shares_, shares_of(size_counts_, image_count_));
    r.mean_intensity = intensity_sum_ / static_cast<double>(image_count_);
  }
  return r;
}

}  // namespace kiln::serve
