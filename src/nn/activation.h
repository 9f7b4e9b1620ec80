// Hidden-layer activations selectable by name in model specs.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace kiln::nn {

enum class Activation { kRelu, kGelu, kTanh };

/// Names as persisted in model specs: never rename.
inline const std::vector<std::string> kActivationNames = {"relu", "gelu", "tanh"};

/// Throws std::invalid_argument for a name outside kActivationNames (callers validate first).
[[nodiscard]] Activation activation_from_name(const std::string& name);

[[nodiscard]] torch::Tensor activate(const torch::Tensor& x, Activation activation);

}  // namespace kiln::nn
