#include "kiln/learn/drift_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/core/error.h"

namespace kiln::learn {

void validate(const AdwinOptions& o) {
  if (!(o.delta > 0 && o.delta < 1)) {
    throw ConfigError("adwin.delta must be in (0, 1), got " + std::to_string(o.delta) + "; River's default is 0.002");
  }
  if (o.clock < 1) throw ConfigError("adwin.clock must be >= 1, got " + std::to_string(o.clock));
  if (o.max_buckets < 2) throw ConfigError("adwin.max_buckets must be >= 2, got " + std::to_string(o.max_buckets));
  if (o.min_window_length < 1) {
    throw ConfigError("adwin.min_window_length must be >= 1, got " + std::to_string(o.min_window_length));
  }
  if (o.grace_period < 0) throw ConfigError("adwin.grace_period must be >= 0, got " + std::to_string(o.grace_period));
}

Adwin::Adwin(AdwinOptions options) : options_(options), rows_(1) { validate(options_); }

void Adwin::insert(double value) {
  rows_[0].push_back({value, 0.0});
  width_ += 1;
  if (width_ > 1) {
    const double d = value - total_ / (width_ - 1);
    variance_ += (width_ - 1) * d * d / width_;
  }
  total_ += value;
  // A row holding max_buckets + 1 buckets merges its two oldest into one bucket of the next row.
  for (std::size_t r = 0; rows_[r].size() == static_cast<std::size_t>(options_.max_buckets) + 1; ++r) {
    if (r + 1 == rows_.size()) rows_.emplace_back();
    const double n = std::ldexp(1.0, static_cast<int>(r));
    const Bucket a = rows_[r][0], b = rows_[r][1];
    const double mu_a = a.total / n, mu_b = b.total / n;
    rows_[r + 1].push_back({a.total + b.total, a.variance + b.variance + n * n * (mu_a - mu_b) * (mu_a - mu_b) / (2 * n)});
    rows_[r].erase(rows_[r].begin(), rows_[r].begin() + 2);
  }
}

double Adwin::drop_oldest() {
  const std::size_t r = rows_.size() - 1;
  const double n = std::ldexp(1.0, static_cast<int>(r));
  const Bucket oldest = rows_[r].front();
  width_ -= n;
  total_ -= oldest.total;
  const double mu = oldest.total / n, mu_window = total_ / width_;
  variance_ -= oldest.variance + n * width_ * (mu - mu_window) * (mu - mu_window) / (n + width_);
  rows_[r].erase(rows_[r].begin());
  if (rows_[r].empty()) rows_.pop_back();
  return n;
}

bool Adwin::significant_cut(double n0, double n1, double diff) const {
  const double delta_prime = std::log(2 * std::log(width_) / options_.delta);
  const double m = 1.0 / (n0 - options_.min_window_length + 1) + 1.0 / (n1 - options_.min_window_length + 1);
  const double epsilon = std::sqrt(2 * m * (variance_ / width_) * delta_prime) + 2.0 / 3.0 * delta_prime * m;
  return std::fabs(diff) > epsilon;
}

bool Adwin::update(double value) {
  insert(value);
  ++tick_;
  bool drift = false;
  if (tick_ % options_.clock == 0 && width_ > options_.grace_period) {
    // Scan the cuts from the oldest bucket; a significant one drops the oldest bucket and rescans.
    for (bool again = true; again;) {
      again = false;
      double n0 = 0, n1 = width_, u0 = 0, u1 = total_;
      bool done = false;
      for (std::size_t r = rows_.size(); r-- > 0 && !done;) {
        const double size = std::ldexp(1.0, static_cast<int>(r));
        for (std::size_t k = 0; k + 1 < rows_[r].size(); ++k) {
          n0 += size;
          n1 -= size;
          u0 += rows_[r][k].total;
          u1 -= rows_[r][k].total;
          if (n1 >= options_.min_window_length && n0 >= options_.min_window_length &&
              significant_cut(n0, n1, u0 / n0 - u1 / n1)) {
            again = drift = true;
            if (width_ > 0) {
              (void)drop_oldest();
              done = true;
              break;
            }
          }
        }
      }
    }
  }
  drift_ = drift;
  if (drift) ++detections_;
  return drift;
}

void validate(const PageHinkleyOptions& o) {
  if (o.min_instances < 1) {
    throw ConfigError("page_hinkley.min_instances must be >= 1, got " + std::to_string(o.min_instances));
  }
  if (!(o.delta >= 0) || !std::isfinite(o.delta)) {
    throw ConfigError("page_hinkley.delta must be >= 0, got " + std::to_string(o.delta));
  }
  if (!(o.threshold > 0) || !std::isfinite(o.threshold)) {
    throw ConfigError("page_hinkley.threshold must be > 0, got " + std::to_string(o.threshold));
  }
  if (!(o.alpha > 0 && o.alpha <= 1)) {
    throw ConfigError("page_hinkley.alpha must be in (0, 1], got " + std::to_string(o.alpha));
  }
}

PageHinkley::PageHinkley(PageHinkleyOptions options) : options_(options) {
  validate(options_);
  reset();
}

void PageHinkley::reset() {
  n_ = 0;
  mean_ = sum_increase_ = sum_decrease_ = 0;
  min_increase_ = std::numeric_limits<double>::infinity();
  max_decrease_ = -1;
  drift_ = false;
}

bool PageHinkley::update(double x) {
  if (drift_) reset();
  ++n_;
  mean_ += (x - mean_) / static_cast<double>(n_);
  const double dev = x - mean_;
  sum_increase_ = options_.alpha * sum_increase_ + dev - options_.delta;
  sum_decrease_ = options_.alpha * sum_decrease_ + dev + options_.delta;
  min_increase_ = std::min(min_increase_, sum_increase_);
  max_decrease_ = std::max(max_decrease_, sum_decrease_);
  if (n_ >= options_.min_instances) {
    drift_ = sum_increase_ - min_increase_ > options_.threshold || max_decrease_ - sum_decrease_ > options_.threshold;
  }
  if (drift_) ++detections_;
  return drift_;
}

}  // namespace kiln::learn
