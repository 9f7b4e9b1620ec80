// L-BFGS with a strong-Wolfe line search over float32 CPU parameters, the algorithm and state of
// torch::optim::LBFGS (history of (s, y) pairs, two-loop recursion, the same line search, stopping
// tests and LBFGSParamState fields, so checkpoints written by either load in the other), with the
// vector work fused and parallel: each pass over the parameter vector does what torch's does in
// several tensor ops, buffers are reused instead of allocated per op, and dot products accumulate
// in double over fixed chunks (the same sums at any thread count).
//
// Why: on Brown's logistic regression (90k features x 15 classes) torch's LBFGS spent as long in
// its own vector ops as the objective itself (5.9 s of steps, 3.1 s of them in 115 evaluations of
// the objective, one thread).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <vector>

namespace kiln::train {

class FusedLbfgs : public torch::optim::LBFGS {
 public:
  /// `params`: contiguous float32 CPU tensors. options.line_search_fn must be "strong_wolfe".
  FusedLbfgs(std::vector<torch::Tensor> params, torch::optim::LBFGSOptions options);

  /// One call: up to max_iter iterations (max_eval evaluations of `closure`, which must fill every
  /// parameter's grad), as torch::optim::LBFGS::step. Returns the first evaluation's loss. Unlike
  /// torch's, a call whose parameters are still, bit for bit, where the previous call ended takes
  /// that call's last evaluation instead of calling `closure` again: the closure must compute the
  /// same function on every call (the full-batch objective; not a different minibatch per call).
  torch::Tensor step(LossClosure closure) override;

  /// The objective and the largest gradient magnitude at the parameters step() left: every call
  /// ends on a point it evaluated (NaN before the first call).
  [[nodiscard]] double last_loss() const { return last_loss_; }
  [[nodiscard]] double last_max_grad() const { return last_max_grad_; }

  /// torch's LBFGS keeps a scratch vector `al` in its state whose undefined entries its serializer
  /// fails on; this class never sets it, and clears it before saving a state loaded from elsewhere.
  void save(torch::serialize::OutputArchive& archive) const override;

 private:
  /// A buffer of the parameters' total size that no one else holds.
  torch::Tensor scratch();
  /// Copies the parameters' grads into `g` (flat); returns (max |g|, g · d) (d may be undefined: 0).
  std::pair<double, double> gather_grad(float* g, const float* d) const;
  /// params = x0 + t d.
  void set_params(const float* x0, double t, const float* d) const;
  /// flat copy of the parameters into x0.
  void copy_params(float* x0) const;
  /// Whether the parameters equal the flat x bit for bit.
  [[nodiscard]] bool params_equal(const float* x) const;

  std::vector<torch::Tensor> params_;
  std::vector<int64_t> offsets_;  ///< where each parameter starts in the flat vector; back() = total
  std::vector<torch::Tensor> pool_;
  /// Where the last call ended: the parameters (flat), the objective, its gradient and largest
  /// magnitude there, and the state it belonged to (a loaded state starts afresh).
  struct End {
    torch::Tensor x, g;
    double f = 0, gmax = 0;
    const void* state = nullptr;
  } end_;
  double last_loss_ = std::numeric_limits<double>::quiet_NaN();
  double last_max_grad_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace kiln::train
