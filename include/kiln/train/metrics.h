// Classification metrics over class ids in [0, C): accuracy, precision / recall / F1 (per class and
// macro / weighted / micro), confusion matrix, top-k accuracy, log loss and expected calibration error.
// Every value equals scikit-learn 1.2 called with labels=range(C) and default arguments (golden-tested
// by tests/golden/make_metrics_golden.py); ECE, which scikit-learn lacks, is defined on ECE below.
//
// Probabilities are float64, row-major [n, C], one row per sample, each row a distribution (entries
// finite and >= 0, summing to 1 within MetricsOptions::probability_tolerance) — softmax outputs, not
// logits. Plain C++: no LibTorch here; convert tensors with `.to(torch::kDouble).contiguous()`.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kiln::train {

struct MetricsOptions {
  /// k values for top-k accuracy, each >= 1; duplicates collapse. k >= C scores 1.0 (as scikit-learn,
  /// which warns). Ignored without probabilities. Default {1, 3, 5}.
  std::vector<int64_t> top_k = {1, 3, 5};
  /// Number of equal-width confidence bins over [0, 1] for ECE, >= 1. Default 15.
  int64_t ece_bins = 15;
  /// Largest allowed |row sum - 1| of a probability row, in [0, 1). Default 1e-3 (float32 softmax
  /// outputs over many classes pass).
  double probability_tolerance = 1e-3;
  /// Log-loss clipping: probabilities are clipped to [eps, 1 - eps], then each row is renormalised.
  /// In (0, 0.5). Default DBL_EPSILON = scikit-learn's eps="auto" for float64 input (use FLT_EPSILON to
  /// reproduce scikit-learn on float32 probabilities).
  double log_loss_eps = 2.220446049250313e-16;
};

/// Throws ConfigError naming the field and the value, e.g. "metrics.ece_bins must be >= 1, got 0".
void validate(const MetricsOptions& options);

/// One equal-width confidence bin of the reliability diagram behind ECE.
struct CalibrationBin {
  /// Samples whose top-1 confidence falls in this bin.
  int64_t count = 0;
  /// Mean top-1 confidence of those samples; 0 when count is 0.
  double mean_confidence = 0.0;
  /// Fraction of those samples whose first argmax equals y_true; 0 when count is 0.
  double accuracy = 0.0;
};

/// Metrics of one evaluation. Per-class vectors are indexed by class id and have num_classes entries.
/// Precision of a class with no predicted samples and recall of a class with no true samples are 0
/// (scikit-learn's zero_division="warn"); F1 is 0 where precision + recall is 0. Classes with zero
/// support count in the macro averages (scikit-learn with labels=range(C)).
struct ClassificationMetrics {
  /// Number of samples n (>= 1).
  int64_t n = 0;
  /// Number of classes C (>= 1).
  int64_t num_classes = 0;
  /// Fraction of samples with y_pred == y_true.
  double accuracy = 0.0;

  /// Per class c: tp_c / predicted_c (0 if nothing was predicted as c).
  std::vector<double> precision;
  /// Per class c: tp_c / support_c (0 if support_c is 0).
  std::vector<double> recall;
  /// Per class c: 2 * P * R / (P + R) (0 if P + R is 0).
  std::vector<double> f1;
  /// Per class c: number of samples with y_true == c.
  std::vector<int64_t> support;

  /// Unweighted means over all C classes of the per-class values.
  double macro_precision = 0.0;
  double macro_recall = 0.0;
  double macro_f1 = 0.0;
  /// Means of the per-class values weighted by support.
  double weighted_precision = 0.0;
  double weighted_recall = 0.0;
  double weighted_f1 = 0.0;
  /// From global tp / predicted / true counts. Single-label ids in [0, C) make all three equal accuracy.
  double micro_precision = 0.0;
  double micro_recall = 0.0;
  double micro_f1 = 0.0;

  /// C x C counts; confusion_matrix[t][p] = samples with y_true == t and y_pred == p (rows = true,
  /// columns = predicted, as sklearn.metrics.confusion_matrix).
  std::vector<std::vector<int64_t>> confusion_matrix;

  /// True when probabilities were given; the three fields below are empty / unset otherwise.
  bool has_probabilities = false;
  /// k -> top-k accuracy, for each k in MetricsOptions::top_k. As sklearn's top_k_accuracy_score:
  /// for C >= 3 a sample is a hit when fewer than k classes rank above its true class, where classes
  /// are ranked by probability descending and, among equal probabilities, by class id descending (the
  /// higher id ranks first). For C == 2, k == 1 predicts class 1 iff p_1 > 0.5 (scikit-learn's rule
  /// for scores in [0, 1]); k >= 2 scores 1.0. For C == 1 every k scores 1.0.
  std::map<int64_t, double> top_k_accuracy;
  /// Mean over samples of -log(q_{y_true}) with q = the row clipped to [eps, 1 - eps] and renormalised
  /// to sum 1 (sklearn's log_loss with labels=range(C), eps="auto" for float64).
  std::optional<double> log_loss;
  /// Expected calibration error: with confidence s_i = max_c p_ic and correct_i = (first argmax of row
  /// i == y_true_i) — computed from the probabilities, not from y_pred — and B = ece_bins bins with
  /// edges e_j = j / B (bin 0 = [e_0, e_1], bin j > 0 = (e_j, e_{j+1}], confidences above 1 go to
  /// the last bin): ECE = sum_j (n_j / n) * |accuracy_j - mean_confidence_j|.
  std::optional<double> ece;
  /// The B bins behind `ece`, in order of increasing confidence.
  std::vector<CalibrationBin> reliability;
};

/// Computes every metric in one call. y_true and y_pred hold n >= 1 class ids in [0, num_classes);
/// probabilities is empty (no top-k, log loss or ECE) or holds n * num_classes values.
/// Throws ConfigError for num_classes < 1 or bad options, DataError for inputs that break the contract
/// (message names the array, index and value, e.g. "metrics: y_pred[17] = 9 is outside [0, 5)").
[[nodiscard]] ClassificationMetrics compute_metrics(const std::vector<int64_t>& y_true,
                                                    const std::vector<int64_t>& y_pred,
                                                    const std::vector<double>& probabilities,
                                                    int64_t num_classes,
                                                    const MetricsOptions& options = {});

/// Accumulates sufficient statistics batch by batch (confusion matrix, top-k hit counts, log-loss sum,
/// calibration bin sums) so predictions need not be kept: memory O(C^2 + |top_k| + ece_bins).
/// compute() gives the same values as compute_metrics over the concatenated batches (up to
/// floating-point summation order). Not thread-safe: use one accumulator per thread, or lock.
class MetricsAccumulator {
 public:
  /// Throws ConfigError for num_classes < 1 or invalid options.
  explicit MetricsAccumulator(int64_t num_classes, MetricsOptions options = {});

  /// Adds n samples. probabilities is nullptr or points at n * num_classes values (row-major). Either
  /// every batch has probabilities or none does. Validates the whole batch first: on DataError the
  /// accumulator is unchanged. Indices in messages count from the first sample since construction or
  /// reset().
  void add(const int64_t* y_true, const int64_t* y_pred, const double* probabilities, std::size_t n);
  /// Vector form of add(); probabilities empty = none, otherwise y_true.size() * num_classes values.
  /// Throws DataError when the sizes disagree.
  void add(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred,
           const std::vector<double>& probabilities = {});

  /// Metrics over every sample added so far. Throws DataError if no sample was added.
  [[nodiscard]] ClassificationMetrics compute() const;

  /// Forgets every sample; keeps num_classes and options.
  void reset();

  /// Samples added so far.
  [[nodiscard]] int64_t size() const { return n_; }
  [[nodiscard]] int64_t num_classes() const { return num_classes_; }

 private:
  int64_t num_classes_;
  MetricsOptions options_;
  std::vector<int64_t> top_k_;               // sorted, unique
  int64_t n_ = 0;
  std::vector<int64_t> confusion_;           // row-major C x C
  std::optional<bool> with_probabilities_;   // fixed by the first batch
  std::vector<int64_t> top_k_hits_;          // parallel to top_k_
  double log_loss_sum_ = 0.0;
  std::vector<int64_t> bin_count_;
  std::vector<double> bin_confidence_sum_;
  std::vector<int64_t> bin_correct_;
};

/// JSON for kiln.json and `kiln evaluate`: keys n, num_classes, labels, accuracy,
/// {macro,weighted,micro}_{precision,recall,f1}, per_class (label -> {precision, recall, f1,
/// support}), confusion_matrix (array of C rows), top_k_accuracy ("k" -> value; {} without
/// probabilities), log_loss and ece (null without probabilities), ece_bins, reliability (array of
/// {count, mean_confidence, accuracy}). labels: one unique name per class, or empty for "0".."C-1".
/// Throws ConfigError when labels has the wrong size or a repeated name.
[[nodiscard]] nlohmann::json to_json(const ClassificationMetrics& metrics,
                                     const std::vector<std::string>& labels);

/// A fixed-width table. Its first part is character for character sklearn's
/// classification_report(digits=digits) with target_names=labels ("accuracy" line, or "micro avg" when
/// some class is neither true nor predicted, as scikit-learn does); then, with probabilities, one line
/// per top-k accuracy, log loss and ECE. Ends with '\n'. labels as in to_json; digits in [0, 17].
[[nodiscard]] std::string format_metrics_table(const ClassificationMetrics& metrics,
                                               const std::vector<std::string>& labels,
                                               int digits = 4);

}  // namespace kiln::train
