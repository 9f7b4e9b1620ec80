// Optimizer construction (LibTorch's AdamW and SGD, numerically identical to torch.optim in torch 1.13,
// golden-tested), learning-rate application, and gradient norms and clipping.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::train {

struct OptimizerOptions {
  /// "adamw" or "sgd". Default "adamw".
  std::string kind = "adamw";
  /// Base learning rate, > 0 (a schedule multiplies it). Default 1e-3.
  double lr = 1e-3;
  /// Weight decay, >= 0: decoupled (p *= 1 - lr * wd) for adamw, L2 added to the gradient for sgd.
  /// Unset: 0.01 for adamw, 0 for sgd.
  std::optional<double> weight_decay;
  /// adamw: coefficients of the running averages of the gradient and its square, each in [0, 1).
  /// Default {0.9, 0.999}.
  std::array<double, 2> betas = {0.9, 0.999};
  /// adamw: added to the denominator for numerical stability, > 0. Default 1e-8.
  double eps = 1e-8;
  /// sgd: momentum factor in [0, 1); 0 = plain SGD. Default 0.
  double momentum = 0.0;
  /// sgd: Nesterov momentum (needs momentum > 0). Default false.
  bool nesterov = false;
};

/// Throws ConfigError naming the field and the value, e.g. "optimizer.lr must be > 0, got -0.1".
void validate(const OptimizerOptions& options);

/// The weight decay `options` gives for its kind (the explicit value, or the kind's default).
[[nodiscard]] double effective_weight_decay(const OptimizerOptions& options);

/// Validates `options` and builds an AdamW or SGD over `params` (one parameter group). Parameters
/// with dense gradients are updated with torch::optim::AdamW's / SGD's formula; parameters with
/// sparse (row) gradients, as EmbeddingBag tables give with sparse gradients on, are updated lazily:
/// only the rows the gradient lists, their moments/momentum included (TensorFlow's LazyAdam
/// semantics, with AdamW's decoupled weight decay on those rows). On the CPU, float AdamW updates
/// and sparse SGD updates run as one fused in-place pass per tensor (or per touched row), equal to
/// torch's ops up to floating-point reordering; elsewhere torch's ops run. State saves and loads
/// as torch's does. Throws ConfigError.
/// `no_decay` (empty, or one flag per parameter): parameters flagged true form a second parameter
/// group with weight decay 0 (Hugging Face's Trainer exempts biases and LayerNorm weights so).
/// Without flags set, one group, as before.
[[nodiscard]] std::unique_ptr<torch::optim::Optimizer> make_optimizer(std::vector<torch::Tensor> params,
                                                                      const OptimizerOptions& options,
                                                                      const std::vector<bool>& no_decay = {});

/// Zeroes dense gradients in place (as torch's zero_grad) and drops sparse ones (the next backward
/// makes new ones; accumulating onto an emptied sparse tensor would only grow it).
void clear_gradients(const std::vector<torch::Tensor>& params);

/// Sets the learning rate of every parameter group of `optimizer` to `lr`.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

/// Clips gradients in place to a global L2 norm of at most `max_norm` and returns the global norm
/// before clipping, as torch.nn.utils.clip_grad_norm_ (norm_type 2): total = ||(||g_1||, ..., ||g_n||)||,
/// every gradient multiplied by min(1, max_norm / (total + 1e-6)). Parameters without a gradient are
/// skipped (0 when none has one). `max_norm` > 0; infinity measures without clipping. A non-finite
/// total leaves the gradients unchanged (torch would scale them by NaN) so the caller can skip the
/// step. Throws ConfigError for max_norm <= 0 or NaN. When `per_param` is given it receives each
/// parameter's gradient norm before clipping, in `params` order (NaN for a parameter without a
/// gradient), so callers that also watch per-layer norms need no second pass over the gradients.
[[nodiscard]] double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm,
                                    std::vector<double>* per_param = nullptr);

/// The L2 norm of each named parameter's gradient (recursing into submodules, in registration
/// order), for gradient-health logging. Parameters without a gradient are left out.
[[nodiscard]] std::vector<std::pair<std::string, double>> grad_norms(const torch::nn::Module& module);

}  // namespace kiln::train
