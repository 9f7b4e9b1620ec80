// Input drift of live traffic against an artifact's training profile (kiln.json "data_profile"),
// over a sliding window of the most recent texts: population stability index (PSI) of the text
// length histogram, out-of-vocabulary rate, and how far the share of texts containing each of the
// training set's most frequent features has moved (the "feature importance drift" of the seed).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::serve {

/// PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over bins, with `expected` and `actual` shares (each
/// summing to 1) floored at `floor` so that empty bins stay finite. 0 = same distribution; the
/// usual reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant. Throws ConfigError when
/// the sizes differ.
[[nodiscard]] double population_stability_index(const std::vector<double>& expected, const std::vector<double>& actual,
                                                double floor = 1e-4);

/// What the server measures of one input (its text, its image, or both).
struct DriftSample {
  /// Length in code points (as the training profile counts it).
  int64_t length = 0;
  /// Share of the text's tokens that are not in the featurizer's vocabulary, in [0, 1].
  double oov_rate = 0;
  /// Positions in the profile's `top_features` list of the features the text contains, each once.
  std::vector<int32_t> top_features;
  /// Whether the input had text (length, oov_rate, top_features) / an image (intensity, pixels).
  bool has_text = true;
  bool has_image = false;
  /// The image's mean gray intensity (0-255) and its width x height.
  double intensity = 0;
  double pixels = 0;
};

struct DriftReport {
  std::size_t window = 0;           ///< samples in the window now
  double length_psi = 0;            ///< PSI of the text-length histogram vs training
  double oov_rate = 0;              ///< mean OOV rate of the window
  double top_feature_shift = 0;     ///< mean |window doc share - training doc share| over top features
  std::vector<double> length_shares;        ///< the window's text-length histogram
  std::vector<double> top_feature_shares;   ///< the window's doc share per top feature
  /// Images (when the profile has image statistics): inputs with an image in the window, PSI of
  /// their mean-intensity and size (pixels) histograms vs training, and their mean intensity.
  std::size_t image_window = 0;
  double intensity_psi = 0;
  double size_psi = 0;
  double mean_intensity = 0;
};

class DriftWindow {
 public:
  /// `profile`: kiln.json's "data_profile" ({"text_length": {"edges", "shares"}, "top_features":
  /// [{"feature", "doc_share", ...}]} and/or {"image_intensity", "image_size": {"edges",
  /// "shares"}}). `capacity`: inputs in the sliding window (>= 1). Throws ConfigError naming the
  /// missing or malformed profile field.
  DriftWindow(const nlohmann::json& profile, std::size_t capacity);

  /// Adds a text, evicting the oldest when the window is full. Thread-safe.
  void observe(const DriftSample& sample);
  /// Drift of the current window (all zeros when it is empty). Thread-safe.
  [[nodiscard]] DriftReport report() const;

  [[nodiscard]] const std::vector<std::string>& top_feature_names() const { return top_names_; }
  /// The training text-length bin of `length` (code points), as the profile defines the bins.
  [[nodiscard]] std::size_t length_bin(int64_t length) const;
  [[nodiscard]] bool has_text_profile() const { return !edges_.empty(); }
  [[nodiscard]] bool has_image_profile() const { return !intensity_edges_.empty(); }

 private:
  std::vector<int64_t> edges_;
  std::vector<double> train_length_shares_;
  std::vector<std::string> top_names_;
  std::vector<double> train_top_shares_;
  std::size_t capacity_;

  mutable std::mutex mu_;
  std::vector<DriftSample> ring_;
  std::size_t next_ = 0;
  // Running sums over the window: O(1) observe, O(bins + features) report.
  std::vector<int64_t> length_counts_;
  std::vector<int64_t> top_counts_;
  double oov_sum_ = 0;
  // Images: training histograms and the window's counts.
  std::vector<double> intensity_edges_, train_intensity_shares_, size_edges_, train_size_shares_;
  std::vector<int64_t> intensity_counts_, size_counts_;
  int64_t image_count_ = 0, text_count_ = 0;
  double intensity_sum_ = 0;
};

}  // namespace kiln::serve
