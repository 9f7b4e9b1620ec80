// Dropout for training steps: the same masks as torch::dropout, drawn faster.
#pragma once

#include <torch/torch.h>

namespace kiln::nn {

/// Exactly torch::dropout(input, p, training): in training, each element is kept with probability
/// 1 - p and scaled by 1 / (1 - p), drawing one double uniform per element from the default CPU
/// generator in element order (so the masks, and the generator's state afterwards, equal
/// torch's). For host float tensors the mask is drawn in one inlined loop on the generator's
/// Mersenne Twister instead of one generator call per element through a TensorIterator; anything
/// else goes through torch::dropout. Differentiable in `input`.
[[nodiscard]] torch::Tensor dropout(const torch::Tensor& input, double p, bool training);

}  // namespace kiln::nn
