// Classification losses over logits [B, C] and int64 targets [B]: cross-entropy (optionally
// class-weighted and label-smoothed, identical to torch.nn.functional.cross_entropy) and focal loss
// (Lin et al. 2017). Golden-tested against torch 1.13, values and gradients.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::train {

struct LossOptions {
  /// "cross_entropy" or "focal". Default "cross_entropy".
  std::string kind = "cross_entropy";
  /// Per-class weights: "none", "balanced" (balanced_class_weights of the training counts) or
  /// "explicit" (`class_weights`). Default "none".
  std::string class_weight = "none";
  /// class_weight "explicit": one weight >= 0 per class, not all zero. Empty otherwise.
  std::vector<double> class_weights;
  /// Focal loss: focusing exponent gamma >= 0 (0 gives cross-entropy). Default 2.0.
  double focal_gamma = 2.0;
  /// Focal loss alpha: empty = none (1 for every class); one value > 0 = the same alpha for every
  /// class; C values >= 0 = alpha per class (for Lin et al.'s binary alpha-balancing use {1 - a, a}).
  /// Default empty. Only valid with kind "focal".
  std::vector<double> focal_alpha;
  /// Cross-entropy label smoothing in [0, 1): the target becomes (1 - s) * one_hot + s / C.
  /// Default 0. Only valid with kind "cross_entropy".
  double label_smoothing = 0.0;
};

/// Throws ConfigError naming the field and the value, e.g. "loss.label_smoothing must be in [0, 1),
/// got 1". Checks that do not depend on the class count; make_loss checks the rest.
void validate(const LossOptions& options);

/// sklearn's compute_class_weight("balanced"): w_c = n_samples / (n_classes * count_c).
/// Throws DataError when a class has no examples (as sklearn does for a class absent from y) or a
/// count is negative.
[[nodiscard]] std::vector<double> balanced_class_weights(const std::vector<int64_t>& counts);

/// A loss function. Thread-safe (const, holds no mutable state). Returns a scalar tensor of the
/// logits' dtype, differentiable with respect to the logits.
///
/// cross_entropy: torch.nn.functional.cross_entropy(logits, targets, weight=w, label_smoothing=s),
///   reduction "mean". With weights w and smoothing s, over log-probabilities lp [B, C]:
///     (1 - s) * sum_i w[y_i] * -lp[i, y_i] / sum_i w[y_i]
///       + s * sum_i sum_c w[c] * -lp[i, c] / C / sum_i w[y_i]
///   (torch 1.13's normalization: both terms divide by the target weights' sum).
/// focal: FL_i = -alpha[y_i] * (1 - p_i)^gamma * log p_i with p_i = softmax(logits_i)[y_i], computed
///   from log_softmax. Reduction: sum_i w[y_i] * FL_i / sum_i w[y_i]; without class weights
///   (w = 1) this is the plain batch mean. With gamma 0 and no alpha it equals weighted cross-entropy.
class Loss {
 public:
  /// `class_weights`: one per class or empty (none). `focal_alpha`: empty (none), one value (all
  /// classes) or one per class. Not validated here; make_loss validates.
  Loss(std::string kind, std::vector<double> class_weights, double focal_gamma, std::vector<double> focal_alpha,
       double label_smoothing);

  /// logits [B, C] floating point, targets [B] int64 in [0, C), on the same device. Throws DataError
  /// on shape or dtype mismatch, a target outside [0, C), or a class count different from the
  /// weights'.
  [[nodiscard]] torch::Tensor operator()(const torch::Tensor& logits, const torch::Tensor& targets) const;

  /// The denominator of the loss's reduction for `targets` (int64 [B]): Σ_i w[y_i] with class
  /// weights, else B. (loss · normaliser) summed over the parts of a batch, divided by the summed
  /// normalisers, is the loss of the whole batch: how data-parallel ranks combine theirs.
  [[nodiscard]] double normalizer(const torch::Tensor& targets) const;

  [[nodiscard]] const std::string& kind() const { return kind_; }
  /// The resolved per-class weights; empty when unweighted.
  [[nodiscard]] const std::vector<double>& class_weights() const { return class_weights_; }

 private:
  std::string kind_;
  std::vector<double> class_weights_;
  double focal_gamma_;
  std::vector<double> focal_alpha_;  // empty, one value, or one per class
  double label_smoothing_;
  torch::Tensor weight_;  // float64 CPU [C] or undefined
  torch::Tensor alpha_;   // float64 CPU [C] or undefined
};

/// Validates `options` and builds the loss. `class_counts` holds the training examples per class
/// (its size is the class count C); it is used by class_weight "balanced" and to check the sizes of
/// class_weights and a per-class focal_alpha. Throws ConfigError (DataError from
/// balanced_class_weights).
[[nodiscard]] Loss make_loss(const LossOptions& options, const std::vector<int64_t>& class_counts);

}  // namespace kiln::train
