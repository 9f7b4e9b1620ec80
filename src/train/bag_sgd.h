// The per-example SGD solver's kernel (fastText's recipe) for models that are a pooled bag embedding
// plus one linear layer (nn::BagLinearParts). For each example, in the given order:
//   h = Σ (w_j / norm) E[i_j]         (norm: 1 for sum, Σ w for mean, sqrt(Σ w²) for sqrtn; an empty bag is 0)
//   p = softmax(W h + b)
//   g = cw_y · (p − onehot(y))        (the gradient of cw_y · −log p_y with respect to the logits)
//   E[i_j] −= lr · (w_j / norm) · Wᵀg,   W −= lr · g hᵀ,   b −= lr · g
// with lr = base_lr · factor(step) for the example's global step (one step per example). With one
// thread the result is a pure function of the inputs; with more, threads take contiguous parts of
// the order and update the shared weights without locks (hogwild), as fastText does.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kiln/nn/batch.h"
#include "kiln/nn/model.h"

namespace kiln::train {

struct BagSgdEpoch {
  const nn::BagLinearParts* parts = nullptr;
  const nn::Batch* x = nullptr;            ///< bag_indices / bag_offsets / bag_weights, on the CPU
  const std::vector<int64_t>* y = nullptr;
  const std::vector<int64_t>* order = nullptr;  ///< the examples of this epoch, in visiting order
  const std::vector<float>* class_weights = nullptr;  ///< one per class
  double base_lr = 0;
  std::function<double(int64_t step)> factor;  ///< the schedule's factor; pure
  int64_t first_step = 0;                      ///< global step of order[0]
  int threads = 1;
  /// Called from the calling thread after each block of examples with (examples done, mean loss of
  /// the block); may be empty.
  std::function<void(int64_t, double)> on_block;
};

struct BagSgdResult {
  double loss_sum = 0;    ///< Σ cw_y · −log p_y over the epoch
  int64_t examples = 0;
  bool finite = true;     ///< false when a loss or an update was not finite (the epoch stopped there)
};

/// Runs one epoch. Throws ConfigError when the tensors are not float32 CPU contiguous or the batch
/// lacks the bag tensors.
[[nodiscard]] BagSgdResult bag_sgd_epoch(const BagSgdEpoch& epoch);

}  // namespace kiln::train
