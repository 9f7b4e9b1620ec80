// The L-BFGS solver's objective for softmax regression over sparse features (nn::LinearParts):
// scikit-learn's LogisticRegression(multinomial, solver="lbfgs") objective C·Σ s_i ℓ_i + ½‖W‖²,
// divided by C·S (S = Σ s_i, n without class weights) as scikit-learn 1.2 does, so that its scale
// does not grow with the data:
//   F(W, b) = (1/S) Σ_i s_i · −log softmax(x_i W + b)_{y_i}  +  ‖W‖² / (2·C·S)
// with s_i the example's class weight (1, or n / (classes · n_{y_i}) for "balanced", as
// scikit-learn's class_weight="balanced") and the bias unpenalised. Its minimiser is
// scikit-learn's coef_ᵀ and intercept_ for the same C and class weights (the objective is strictly
// convex in W; the bias is fixed up to a common shift, which starting from Σ b = 0 keeps at 0).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "kiln/nn/batch.h"

namespace kiln::train {

class LinearObjective {
 public:
  /// `x` must hold bag_indices / bag_offsets (bag_weights optional, 1 when absent) on the CPU;
  /// `class_weights` one weight per class. Throws DataError for an index outside [0, features).
  LinearObjective(const nn::Batch& x, const std::vector<int64_t>& y, const std::vector<float>& class_weights,
                  int64_t features, int64_t classes, double C);

  /// F at (table [features, classes], bias [classes]), both float32 CPU contiguous; writes ∂F into
  /// grad_table / grad_bias (written in place when they are contiguous float32 CPU tensors of the
  /// weights' shapes, replaced otherwise). `data_loss` (optional)
  /// receives the first term alone (the weighted mean cross-entropy).
  double evaluate(const torch::Tensor& table, const torch::Tensor& bias, torch::Tensor& grad_table,
                  torch::Tensor& grad_bias, double* data_loss = nullptr);
  /// The regularization term ‖W‖² / (2·C·S) at `table`, as evaluate() adds it: F minus the data loss.
  [[nodiscard]] double penalty(const torch::Tensor& table) const;
  /// S = Σ s_i: C·S·∂F is the gradient of scikit-learn's unscaled objective, which its tol bounds.
  [[nodiscard]] double weight_sum() const { return weight_sum_; }

 private:
  int64_t rows_ = 0, features_ = 0, classes_ = 0;
  double C_ = 1;
  double weight_sum_ = 0;  ///< S
  // X by columns (CSC, rows ascending in each): both passes walk the features in order.
  std::vector<int64_t> col_ptr_;
  std::vector<int32_t> col_row_;
  std::vector<float> col_val_;
  std::vector<int64_t> y_;
  std::vector<float> sample_weight_;  ///< s_i
  /// [rows, stride_]: the logits, then s_i (p_i − onehot(y_i)) / n, each row padded with zeros to
  /// stride_ (classes rounded up to 16 floats) and starting on a 64-byte line: a row the passes
  /// gather spans whole cache lines, and their loops over it have no remainder.
  struct FreeAligned {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], FreeAligned> residual_;
  int64_t stride_ = 0;
  /// Per feature f, where each of block_count_ row blocks starts in its column:
  /// block_start_[f * (block_count_ + 1) + c], c in [0, block_count_]. Built for the thread count.
  int64_t block_count_ = 0;
  std::vector<int64_t> block_start_;
};

}  // namespace kiln::train
