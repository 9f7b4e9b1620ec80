// Fused, in-place CPU kernels for the optimizer step and gradient clipping: one pass over the
// elements instead of one LibTorch op (dispatch, temporaries, a pass) per term of the formula.
// Each kernel evaluates torch.optim's formula in the same order with the same rounding of the
// coefficients to the tensor's dtype, so results differ from torch's ops only by floating-point
// reordering (FMA contraction). Private to kiln_train.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace kiln::train {

/// One AdamW step's coefficients (decoupled weight decay, bias corrections from the step count).
struct AdamWStep {
  double lr = 0;
  double weight_decay = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  int64_t step = 1;  ///< the parameter's step count after this step, >= 1
};

/// True when `t` can go through the fused kernels: a strided-free CPU float32/float64 tensor.
[[nodiscard]] bool fusable(const torch::Tensor& t);

/// AdamW on whole tensors, as torch::optim::AdamW (amsgrad off): w, m, v updated in place from g.
/// All four fusable, same dtype and element count.
void adamw_dense(torch::Tensor& w, torch::Tensor& m, torch::Tensor& v, const torch::Tensor& g, const AdamWStep& s);

/// Lazy AdamW on rows: for each k, row rows[k] of w, m, v (each [n, d]) is updated from row k of
/// `values` ([rows.size, d]). `rows` must not repeat (a coalesced sparse gradient's indices).
void adamw_rows(torch::Tensor& w, torch::Tensor& m, torch::Tensor& v, const torch::Tensor& rows,
                const torch::Tensor& values, const AdamWStep& s);

/// SGD on rows (as torch::optim::SGD with dampening 0 on each listed row): weight decay, then
/// momentum through `buffer` (undefined when momentum is 0), Nesterov on request.
void sgd_rows(torch::Tensor& w, torch::Tensor* buffer, const torch::Tensor& rows, const torch::Tensor& values,
              double lr, double weight_decay, double momentum, bool nesterov);

/// Sum of squares of a fusable tensor's elements, accumulated in double.
[[nodiscard]] double sum_of_squares(const torch::Tensor& t);

/// t *= factor in place (factor rounded to t's dtype, as torch's mul_ by a scalar).
void scale_in_place(torch::Tensor& t, double factor);

}  // namespace kiln::train
