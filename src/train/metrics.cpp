#include "kiln/train/metrics.h"

#include "kiln/core/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <utility>

namespace kiln::train {
namespace {

std::string num(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

void check_num_classes(int64_t num_classes) {
  if (num_classes < 1) {
    throw ConfigError("metrics: num_classes must be >= 1, got " + std::to_string(num_classes) +
                      "; pass the size of the label map");
  }
}

void check_ids(const char* what, const int64_t* ids, std::size_t n, int64_t offset, int64_t c) {
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= c) {
      throw DataError(std::string("metrics: ") + what + "[" + std::to_string(offset + int64_t(i)) +
                      "] = " + std::to_string(ids[i]) + " is outside [0, " + std::to_string(c) + ")");
    }
  }
}

// Bin of confidence s among `bins` equal-width bins with edges j / bins: bin 0 = [0, e_1],
// bin j = (e_j, e_{j+1}]; anything above 1 goes to the last bin.
int64_t confidence_bin(double s, int64_t bins) {
  auto edge = [bins](int64_t j) { return double(j) / double(bins); };
  int64_t b = int64_t(std::ceil(s * double(bins))) - 1;
  b = std::clamp<int64_t>(b, 0, bins - 1);
  while (b > 0 && s <= edge(b)) --b;
  while (b < bins - 1 && s > edge(b + 1)) ++b;
  return b;
}

std::vector<std::string> resolve_labels(const ClassificationMetrics& m,
                                        const std::vector<std::string>& labels) {
  if (labels.empty()) {
    std::vector<std::string> ids;
    for (int64_t c = 0; c < m.num_classes; ++c) ids.push_back(std::to_string(c));
    return ids;
  }
  if (int64_t(labels.size()) != m.num_classes) {
    throw ConfigError("metrics: " + std::to_string(labels.size()) + " label names given for " +
                      std::to_string(m.num_classes) + " classes; pass one name per class id or none");
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (!seen.insert(labels[i]).second) {
      throw ConfigError("metrics: label name \"" + labels[i] + "\" appears twice (second at index " +
                        std::to_string(i) + "); label names must be unique");
    }
  }
  return labels;
}

// Python's str.format pads by code points; count UTF-8 lead bytes to pad the same way.
std::size_t display_width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char ch : s) w += (ch & 0xC0) != 0x80;
  return w;
}

std::string pad_left(const std::string& s, std::size_t width) {
  std::size_t w = display_width(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, " %9.*f", digits, v);
  return buf;
}

std::string count(int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, " %9lld\n", static_cast<long long>(v));
  return buf;
}

}  // namespace

void validate(const MetricsOptions& options) {
  for (int64_t k : options.top_k) {
    if (k < 1) throw ConfigError("metrics.top_k entries must be >= 1, got " + std::to_string(k));
  }
  if (options.ece_bins < 1) {
    throw ConfigError("metrics.ece_bins must be >= 1, got " + std::to_string(options.ece_bins));
  }
  if (!(options.probability_tolerance >= 0.0 && options.probability_tolerance < 1.0)) {
    throw ConfigError("metrics.probability_tolerance must be in [0, 1), got " +
                      num(options.probability_tolerance));
  }
  if (!(options.log_loss_eps > 0.0 && options.log_loss_eps < 0.5)) {
    throw ConfigError("metrics.log_loss_eps must be in (0, 0.5), got " + num(options.log_loss_eps));
  }
}

MetricsAccumulator::MetricsAccumulator(int64_t num_classes, MetricsOptions options)
    : num_classes_(num_classes), options_(std::move(options)) {
  check_num_classes(num_classes_);
  validate(options_);
  top_k_ = options_.top_k;
  std::sort(top_k_.begin(), top_k_.end());
  top_k_.erase(std::unique(top_k_.begin(), top_k_.end()), top_k_.end());
  reset();
}

void MetricsAccumulator::reset() {
  n_ = 0;
  confusion_.assign(std::size_t(num_classes_ * num_classes_), 0);
  with_probabilities_.reset();
  top_k_hits_.assign(top_k_.size(), 0);
  log_loss_sum_ = 0.0;
  bin_count_.assign(std::size_t(options_.ece_bins), 0);
  bin_confidence_sum_.assign(std::size_t(options_.ece_bins), 0.0);
  bin_correct_.assign(std::size_t(options_.ece_bins), 0);
}

void MetricsAccumulator::add(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred,
                             const std::vector<double>& probabilities) {
  if (y_true.size() != y_pred.size()) {
    throw DataError("metrics: y_true has " + std::to_string(y_true.size()) + " entries but y_pred has " +
                    std::to_string(y_pred.size()) + "; pass one prediction per target");
  }
  const std::size_t n = y_true.size();
  if (!probabilities.empty() && probabilities.size() != n * std::size_t(num_classes_)) {
    throw DataError("metrics: probabilities has " + std::to_string(probabilities.size()) +
                    " values but " + std::to_string(n) + " samples x " + std::to_string(num_classes_) +
                    " classes need " + std::to_string(n * std::size_t(num_classes_)) +
                    " (row-major [n, C]), or pass none");
  }
  add(y_true.data(), y_pred.data(), probabilities.empty() ? nullptr : probabilities.data(), n);
}

void MetricsAccumulator::add(const int64_t* y_true, const int64_t* y_pred, const double* probabilities,
                             std::size_t n) {
  const int64_t c = num_classes_;
  const bool has_probs = probabilities != nullptr;
  if (n == 0) return;
  if (with_probabilities_ && *with_probabilities_ != has_probs) {
    throw DataError("metrics: the batch starting at sample " + std::to_string(n_) +
                    (has_probs ? " has probabilities but earlier batches had none"
                               : " has no probabilities but earlier batches had them") +
                    "; pass probabilities with every batch or with none");
  }
  check_ids("y_true", y_true, n, n_, c);
  check_ids("y_pred", y_pred, n, n_, c);
  if (has_probs) {
    for (std::size_t i = 0; i < n; ++i) {
      const double* row = probabilities + i * std::size_t(c);
      double sum = 0.0;
      for (int64_t j = 0; j < c; ++j) {
        if (!std::isfinite(row[j]) || row[j] < 0.0) {
          throw DataError("metrics: probabilities[" + std::to_string(n_ + int64_t(i)) + "][" +
                          std::to_string(j) + "] = " + num(row[j]) +
                          " is not a probability (finite, >= 0); pass softmax outputs, not logits");
        }
        sum += row[j];
      }
      if (std::fabs(sum - 1.0) > options_.probability_tolerance) {
        throw DataError("metrics: probabilities row " + std::to_string(n_ + int64_t(i)) + " sums to " +
                        num(sum) + ", expected 1 within " + num(options_.probability_tolerance) +
                        "; pass softmax outputs, not logits");
      }
    }
  }

  with_probabilities_ = has_probs;
  for (std::size_t i = 0; i < n; ++i) ++confusion_[std::size_t(y_true[i] * c + y_pred[i])];
  if (has_probs) {
    const double eps = options_.log_loss_eps;
    const int64_t bins = options_.ece_bins;
    for (std::size_t i = 0; i < n; ++i) {
      const double* row = probabilities + i * std::size_t(c);
      const int64_t t = y_true[i];

      // Top-k: classes ranked by probability descending, ties by class id descending.
      const double pt = row[t];
      int64_t rank = 0;
      for (int64_t j = 0; j < c; ++j) rank += row[j] > pt || (row[j] == pt && j > t);
      for (std::size_t q = 0; q < top_k_.size(); ++q) {
        bool hit;
        if (c == 2 && top_k_[q] == 1) {
          hit = int64_t(row[1] > 0.5) == t;
        } else {
          hit = rank < top_k_[q];
        }
        top_k_hits_[q] += hit;
      }

      // Log loss: clip to [eps, 1 - eps], renormalise the row.
      double clipped_sum = 0.0;
      for (int64_t j = 0; j < c; ++j) clipped_sum += std::min(std::max(row[j], eps), 1.0 - eps);
      const double qt = std::min(std::max(pt, eps), 1.0 - eps) / clipped_sum;
      log_loss_sum_ -= std::log(qt);

      // Calibration: top-1 confidence and first argmax.
      int64_t arg = 0;
      for (int64_t j = 1; j < c; ++j) {
        if (row[j] > row[arg]) arg = j;
      }
      const int64_t b = confidence_bin(row[arg], bins);
      ++bin_count_[std::size_t(b)];
      bin_confidence_sum_[std::size_t(b)] += row[arg];
      bin_correct_[std::size_t(b)] += arg == t;
    }
  }
  n_ += int64_t(n);
}

ClassificationMetrics MetricsAccumulator::compute() const {
  if (n_ == 0) {
    throw DataError("metrics: no samples were added; metrics need at least one sample");
  }
  const int64_t c = num_classes_;
  ClassificationMetrics m;
  m.n = n_;
  m.num_classes = c;
  m.confusion_matrix.assign(std::size_t(c), std::vector<int64_t>(std::size_t(c), 0));
  std::vector<int64_t> predicted(std::size_t(c), 0);
  m.support.assign(std::size_t(c), 0);
  int64_t correct = 0;
  for (int64_t t = 0; t < c; ++t) {
    for (int64_t p = 0; p < c; ++p) {
      const int64_t v = confusion_[std::size_t(t * c + p)];
      m.confusion_matrix[std::size_t(t)][std::size_t(p)] = v;
      m.support[std::size_t(t)] += v;
      predicted[std::size_t(p)] += v;
    }
    correct += confusion_[std::size_t(t * c + t)];
  }
  const double n = double(n_);
  m.accuracy = double(correct) / n;

  auto divide = [](int64_t a, int64_t b) { return b == 0 ? 0.0 : double(a) / double(b); };
  auto f_score = [](double p, double r) { return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r); };
  m.precision.resize(std::size_t(c));
  m.recall.resize(std::size_t(c));
  m.f1.resize(std::size_t(c));
  for (std::size_t k = 0; k < std::size_t(c); ++k) {
    const int64_t tp = confusion_[k * std::size_t(c) + k];
    m.precision[k] = divide(tp, predicted[k]);
    m.recall[k] = divide(tp, m.support[k]);
    m.f1[k] = f_score(m.precision[k], m.recall[k]);
    m.macro_precision += m.precision[k];
    m.macro_recall += m.recall[k];
    m.macro_f1 += m.f1[k];
    m.weighted_precision += m.precision[k] * double(m.support[k]);
    m.weighted_recall += m.recall[k] * double(m.support[k]);
    m.weighted_f1 += m.f1[k] * double(m.support[k]);
  }
  m.macro_precision /= double(c);
  m.macro_recall /= double(c);
  m.macro_f1 /= double(c);
  m.weighted_precision /= n;
  m.weighted_recall /= n;
  m.weighted_f1 /= n;
  // Every sample is predicted as exactly one of the C classes and is true for exactly one.
  m.micro_precision = divide(correct, n_);
  m.micro_recall = divide(correct, n_);
  m.micro_f1 = f_score(m.micro_precision, m.micro_recall);

  m.has_probabilities = with_probabilities_.value_or(false);
  if (m.has_probabilities) {
    for (std::size_t q = 0; q < top_k_.size(); ++q) {
      m.top_k_accuracy[top_k_[q]] = double(top_k_hits_[q]) / n;
    }
    m.log_loss = log_loss_sum_ / n;
    double ece = 0.0;
    m.reliability.resize(bin_count_.size());
    for (std::size_t b = 0; b < bin_count_.size(); ++b) {
      CalibrationBin& bin = m.reliability[b];
      bin.count = bin_count_[b];
      if (bin.count == 0) continue;
      bin.mean_confidence = bin_confidence_sum_[b] / double(bin.count);
      bin.accuracy = double(bin_correct_[b]) / double(bin.count);
      ece += (double(bin.count) / n) * std::fabs(bin.accuracy - bin.mean_confidence);
    }
    m.ece = ece;
  }
  return m;
}

ClassificationMetrics compute_metrics(const std::vector<int64_t>& y_true,
                                      const std::vector<int64_t>& y_pred,
                                      const std::vector<double>& probabilities, int64_t num_classes,
                                      const MetricsOptions& options) {
  MetricsAccumulator acc(num_classes, options);
  acc.add(y_true, y_pred, probabilities);
  return acc.compute();
}

nlohmann::json to_json(const ClassificationMetrics& m, const std::vector<std::string>& labels) {
  const std::vector<std::string> names = resolve_labels(m, labels);
  nlohmann::json j;
  j["n"] = m.n;
  j["num_classes"] = m.num_classes;
  j["labels"] = names;
  j["accuracy"] = m.accuracy;
  j["macro_precision"] = m.macro_precision;
  j["macro_recall"] = m.macro_recall;
  j["macro_f1"] = m.macro_f1;
  j["weighted_precision"] = m.weighted_precision;
  j["weighted_recall"] = m.weighted_recall;
  j["weighted_f1"] = m.weighted_f1;
  j["micro_precision"] = m.micro_precision;
  j["micro_recall"] = m.micro_recall;
  j["micro_f1"] = m.micro_f1;
  nlohmann::json per_class = nlohmann::json::object();
  for (std::size_t k = 0; k < names.size(); ++k) {
    per_class[names[k]] = {{"precision", m.precision[k]},
                           {"recall", m.recall[k]},
                           {"f1", m.f1[k]},
                           {"support", m.support[k]}};
  }
  j["per_class"] = std::move(per_class);
  j["confusion_matrix"] = m.confusion_matrix;
  nlohmann::json top_k = nlohmann::json::object();
  for (const auto& [k, v] : m.top_k_accuracy) top_k[std::to_string(k)] = v;
  j["top_k_accuracy"] = std::move(top_k);
  j["log_loss"] = m.log_loss ? nlohmann::json(*m.log_loss) : nlohmann::json(nullptr);
  j["ece"] = m.ece ? nlohmann::json(*m.ece) : nlohmann::json(nullptr);
  j["ece_bins"] = m.reliability.size();
  nlohmann::json bins = nlohmann::json::array();
  for (const CalibrationBin& b : m.reliability) {
    bins.push_back({{"count", b.count}, {"mean_confidence", b.mean_confidence}, {"accuracy", b.accuracy}});
  }
  j["reliability"] = std::move(bins);
  return j;
}

std::string format_metrics_table(const ClassificationMetrics& m, const std::vector<std::string>& labels,
                                 int digits) {
  if (digits < 0 || digits > 17) {
    throw ConfigError("metrics: digits must be in [0, 17], got " + std::to_string(digits));
  }
  const std::vector<std::string> names = resolve_labels(m, labels);
  std::size_t width = std::max<std::size_t>(12, std::size_t(digits));  // len("weighted avg")
  for (const std::string& s : names) width = std::max(width, display_width(s));

  std::string out = pad_left("", width) + " ";
  for (const char* h : {"precision", "recall", "f1-score", "support"}) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " %9s", h);
    out += buf;
  }
  out += "\n\n";
  auto row = [&](const std::string& name, double p, double r, double f, int64_t support) {
    out += pad_left(name, width) + " " + fixed(p, digits) + fixed(r, digits) + fixed(f, digits) +
           count(support);
  };
  for (std::size_t k = 0; k < names.size(); ++k) {
    row(names[k], m.precision[k], m.recall[k], m.f1[k], m.support[k]);
  }
  out += "\n";

  // scikit-learn prints "accuracy" only when every label occurs in y_true or y_pred.
  bool every_label_seen = true;
  for (std::size_t k = 0; k < std::size_t(m.num_classes); ++k) {
    int64_t predicted = 0;
    for (const auto& r : m.confusion_matrix) predicted += r[k];
    every_label_seen = every_label_seen && (m.support[k] > 0 || predicted > 0);
  }
  if (every_label_seen) {
    out += pad_left("accuracy", width) + " " + std::string(20, ' ') + fixed(m.micro_f1, digits) +
           count(m.n);
  } else {
    row("micro avg", m.micro_precision, m.micro_recall, m.micro_f1, m.n);
  }
  row("macro avg", m.macro_precision, m.macro_recall, m.macro_f1, m.n);
  row("weighted avg", m.weighted_precision, m.weighted_recall, m.weighted_f1, m.n);

  if (m.has_probabilities) {
    out += "\n";
    auto line = [&](const std::string& name, double v) {
      out += pad_left(name, width) + " " + fixed(v, digits) + "\n";
    };
    for (const auto& [k, v] : m.top_k_accuracy) line("top-" + std::to_string(k) + " acc", v);
    if (m.log_loss) line("log loss", *m.log_loss);
    if (m.ece) line("ECE " + std::to_string(m.reliability.size()) + " bins", *m.ece);
  }
  return out;
}

}  // namespace kiln::train
