// Drift detectors on a stream of values (Kiln feeds them the 0/1 error of each feedback item's
// prediction), with River's semantics (river.drift.ADWIN and river.drift.PageHinkley): the same
// defaults, the same update order, the same indices where they fire (tests/golden/make_drift_golden.py
// holds the reference and checks it against River's documented examples). Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::learn {

class DriftDetector {
 public:
  virtual ~DriftDetector() = default;
  /// Adds one value; returns whether this update detected a drift (drift_detected()).
  virtual bool update(double value) = 0;
  [[nodiscard]] bool drift_detected() const { return drift_; }
  /// Persisted name ("adwin", "page_hinkley").
  [[nodiscard]] virtual std::string name() const = 0;
  /// Drifts detected so far.
  [[nodiscard]] int64_t detections() const { return detections_; }

 protected:
  bool drift_ = false;
  int64_t detections_ = 0;
};

struct AdwinOptions {
  /// Confidence of the cut test (smaller: fewer false alarms, later detection). Default 0.002.
  double delta = 0.002;
  /// Test for a cut every `clock` updates. Default 32.
  int clock = 32;
  /// Buckets of each size kept before the two oldest merge. Default 5.
  int max_buckets = 5;
  /// Least items on each side of a cut. Default 5.
  int min_window_length = 5;
  /// No test until the window holds more than this many items. Default 10.
  int grace_period = 10;
};
/// Throws ConfigError naming the field and the value.
void validate(const AdwinOptions& options);

/// ADaptive WINdowing (Bifet & Gavalda 2007) over an exponential histogram of buckets, as River's
/// AdaptiveWindowing: a significant cut drops the oldest bucket and the scan restarts; the window is
/// never reset on drift.
class Adwin final : public DriftDetector {
 public:
  explicit Adwin(AdwinOptions options = {});
  bool update(double value) override;
  [[nodiscard]] std::string name() const override { return "adwin"; }
  /// Items in the window.
  [[nodiscard]] double width() const { return width_; }
  /// Mean of the window (0 when empty): the error rate for a 0/1 stream.
  [[nodiscard]] double estimation() const { return width_ > 0 ? total_ / width_ : 0.0; }

 private:
  struct Bucket {
    double total, variance;
  };
  void insert(double value);
  double drop_oldest();
  [[nodiscard]] bool significant_cut(double n0, double n1, double diff) const;

  AdwinOptions options_;
  std::vector<std::vector<Bucket>> rows_;  ///< rows_[r]: buckets of 2^r items, oldest first
  double total_ = 0, variance_ = 0, width_ = 0;
  int64_t tick_ = 0;
};

struct PageHinkleyOptions {
  /// Values seen (since the last drift) before it may fire. Default 30.
  int min_instances = 30;
  /// Magnitude of change tolerated. Default 0.005.
  double delta = 0.005;
  /// Lambda: the cumulative deviation that fires. Default 50.
  double threshold = 50;
  /// Forgetting factor of the cumulative sums. Default 1 - 0.0001.
  double alpha = 1 - 0.0001;
};
void validate(const PageHinkleyOptions& options);

/// The two-sided Page-Hinkley test (River's mode "both"): fires on an increase or a decrease of the
/// mean; the update after a drift starts from a fresh state.
class PageHinkley final : public DriftDetector {
 public:
  explicit PageHinkley(PageHinkleyOptions options = {});
  bool update(double value) override;
  [[nodiscard]] std::string name() const override { return "page_hinkley"; }

 private:
  void reset();
  PageHinkleyOptions options_;
  int64_t n_ = 0;
  double mean_ = 0, sum_increase_ = 0, sum_decrease_ = 0, min_increase_ = 0, max_decrease_ = 0;
};

}  // namespace kiln::learn
