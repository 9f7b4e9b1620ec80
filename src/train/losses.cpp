#include "kiln/train/losses.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/core/format.h"

namespace kiln::train {

namespace {

[[noreturn]] void loss_fail(const std::string& field, const std::string& rule, const std::string& got) {
  throw ConfigError("loss." + field + " must be " + rule + ", got " + got);
}

void check_per_class(const std::vector<double>& v, const char* field) {
  bool any_positive = false;
  for (std::size_t c = 0; c < v.size(); ++c) {
    if (!(v[c] >= 0.0) || !std::isfinite(v[c])) {
      loss_fail(std::string(field) + "[" + std::to_string(c) + "]", "finite and >= 0", core::format_number(v[c]));
    }
    any_positive = any_positive || v[c] > 0.0;
  }
  if (!v.empty() && !any_positive) loss_fail(field, "not all zero", "all zero");
}

torch::Tensor to_tensor(const std::vector<double>& v) {
  if (v.empty()) return {};
  return torch::tensor(v, torch::kFloat64);
}

}  // namespace

void validate(const LossOptions& o) {
  if (o.kind != "cross_entropy" && o.kind != "focal") loss_fail("kind", "cross_entropy or focal", "'" + o.kind + "'");
  if (o.class_weight != "none" && o.class_weight != "balanced" && o.class_weight != "explicit") {
    loss_fail("class_weight", "none, balanced or explicit", "'" + o.class_weight + "'");
  }
  if (o.class_weight == "explicit" && o.class_weights.empty()) {
    throw ConfigError("loss.class_weight is 'explicit' but loss.class_weights is empty; give one weight per class");
  }
  if (o.class_weight != "explicit" && !o.class_weights.empty()) {
    throw ConfigError("loss.class_weights is given but loss.class_weight is '" + o.class_weight +
                      "'; set class_weight to explicit to use them");
  }
  check_per_class(o.class_weights, "class_weights");
  if (!(o.focal_gamma >= 0.0) || !std::isfinite(o.focal_gamma)) loss_fail("focal_gamma", "finite and >= 0", core::format_number(o.focal_gamma));
  if (o.focal_alpha.size() == 1) {
    if (!(o.focal_alpha[0] > 0.0) || !std::isfinite(o.focal_alpha[0])) {
      loss_fail("focal_alpha", "finite and > 0", core::format_number(o.focal_alpha[0]));
    }
  } else {
    check_per_class(o.focal_alpha, "focal_alpha");
  }
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing < 1.0)) loss_fail("label_smoothing", "in [0, 1)", core::format_number(o.label_smoothing));
  if (o.kind != "focal" && !o.focal_alpha.empty()) {
    throw ConfigError("loss.focal_alpha is set but loss.kind is '" + o.kind + "'; it applies only to kind focal");
  }
  if (o.kind != "cross_entropy" && o.label_smoothing != 0.0) {
    throw ConfigError("loss.label_smoothing is " + core::format_number(o.label_smoothing) + " but loss.kind is '" + o.kind +
                      "'; label smoothing applies only to kind cross_entropy");
  }
}

std::vector<double> balanced_class_weights(const std::vector<int64_t>& counts) {
  int64_t n = 0;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] < 0) {
      throw DataError("balanced class weights: class " + std::to_string(c) + " has a negative count (" +
                      std::to_string(counts[c]) + ")");
    }
    if (counts[c] == 0) {
      throw DataError("balanced class weights: class " + std::to_string(c) +
                      " has no training examples; add examples of it, drop it from the label set, or give "
                      "explicit class weights");
    }
    n += counts[c];
  }
  std::vector<double> w(counts.size());
  const double k = static_cast<double>(counts.size());
  for (std::size_t c = 0; c < counts.size(); ++c) {
    w[c] = static_cast<double>(n) / (k * static_cast<double>(counts[c]));
  }
  return w;
}

Loss::Loss(std::string kind, std::vector<double> class_weights, double focal_gamma, std::vector<double> focal_alpha,
           double label_smoothing)
    : kind_(std::move(kind)),
      class_weights_(std::move(class_weights)),
      focal_gamma_(focal_gamma),
      focal_alpha_(std::move(focal_alpha)),
      label_smoothing_(label_smoothing),
      weight_(to_tensor(class_weights_)),
      alpha_(to_tensor(focal_alpha_)) {}

torch::Tensor Loss::operator()(const torch::Tensor& logits, const torch::Tensor& targets) const {
  if (logits.dim() != 2 || !logits.is_floating_point()) {
    throw DataError("loss: logits must be a floating-point [batch, classes] tensor, got " +
                    std::to_string(logits.dim()) + "-D " + std::string(c10::toString(logits.scalar_type())));
  }
  if (targets.dim() != 1 || targets.scalar_type() != torch::kInt64 || targets.size(0) != logits.size(0)) {
    throw DataError("loss: targets must be an int64 [batch] tensor with batch " + std::to_string(logits.size(0)) +
                    ", got " + std::to_string(targets.dim()) + "-D " +
                    std::string(c10::toString(targets.scalar_type())) +
                    (targets.dim() == 1 ? " of length " + std::to_string(targets.size(0)) : std::string()));
  }
  const int64_t classes = logits.size(1);
  const auto per_class_size = [&](std::size_t size, const char* what) {
    if (static_cast<int64_t>(size) != classes) {
      throw DataError("loss: logits have " + std::to_string(classes) + " classes but the loss has " +
                      std::to_string(size) + " " + what);
    }
  };
  if (!class_weights_.empty()) per_class_size(class_weights_.size(), "class weights");
  if (focal_alpha_.size() > 1) per_class_size(focal_alpha_.size(), "focal alpha values");
  if (targets.numel() > 0) {
    int64_t lo = 0, hi = 0;
    if (targets.device().is_cpu()) {  // one scan, no tensor ops
      const auto t = targets.contiguous();
      const int64_t* p = t.data_ptr<int64_t>();
      lo = hi = p[0];
      for (int64_t i = 1; i < t.numel(); ++i) {
        lo = std::min(lo, p[i]);
        hi = std::max(hi, p[i]);
      }
    } else {
      lo = targets.min().item<int64_t>();
      hi = targets.max().item<int64_t>();
    }
    if (lo < 0 || hi >= classes) {
      throw DataError("loss: target " + std::to_string(lo < 0 ? lo : hi) + " is outside [0, " +
                      std::to_string(classes) + ")");
    }
  }
  const auto opts = logits.options();
  const torch::Tensor weight = weight_.defined() ? weight_.to(opts) : torch::Tensor();

  if (kind_ == "cross_entropy") {
    namespace F = torch::nn::functional;
    auto ce = F::CrossEntropyFuncOptions().label_smoothing(label_smoothing_);
    if (weight.defined()) ce.weight(weight);
    return F::cross_entropy(logits, targets, ce);
  }

  // Focal loss in log-space: 1 - p = -expm1(log p) keeps precision as p -> 1; the clamp keeps
  // (1 - p)^gamma differentiable at p == 1 for gamma < 1 (the clamped branch gets zero gradient,
  // the limit of the true gradient).
  const auto log_p = torch::log_softmax(logits, 1).gather(1, targets.unsqueeze(1)).squeeze(1);
  const double tiny = logits.scalar_type() == torch::kFloat64 ? 1e-300 : 1e-30;
  const auto one_minus_p = (-torch::expm1(log_p)).clamp_min(tiny);
  auto per_example = -one_minus_p.pow(focal_gamma_) * log_p;
  if (alpha_.defined()) {
    per_example = focal_alpha_.size() == 1 ? per_example * focal_alpha_[0]
                                            : per_example * alpha_.to(opts).index_select(0, targets);
  }
  if (!weight.defined()) return per_example.mean();
  const auto w = weight.index_select(0, targets);
  return (w * per_example).sum() / w.sum();
}

double Loss::normalizer(const torch::Tensor& targets) const {
  if (!weight_.defined()) return static_cast<double>(targets.numel());
  if (targets.numel() == 0) return 0.0;
  return weight_.index_select(0, targets.to(torch::kCPU)).sum().item<double>();
}

Loss make_loss(const LossOptions& options, const std::vector<int64_t>& class_counts) {
  validate(options);
  const std::size_t classes = class_counts.size();
  std::vector<double> weights;
  if (options.class_weight == "balanced") {
    weights = balanced_class_weights(class_counts);
  } else if (options.class_weight == "explicit") {
    if (options.class_weights.size() != classes) {
      throw ConfigError("loss.class_weights has " + std::to_string(options.class_weights.size()) +
                        " entries but there are " + std::to_string(classes) + " classes; give one weight per class");
    }
    weights = options.class_weights;
  }
  std::vector<double> alpha = options.focal_alpha;
  if (alpha.size() > 1 && alpha.size() != classes) {
    throw ConfigError("loss.focal_alpha has " + std::to_string(alpha.size()) + " entries but there are " +
                      std::to_string(classes) + " classes; give one value for all classes or one per class");
  }
  return Loss(options.kind, std::move(weights), options.focal_gamma, std::move(alpha), options.label_smoothing);
}

}  // namespace kiln::train
