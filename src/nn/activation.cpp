#include "activation.h"

#include <stdexcept>

namespace kiln::nn {

Activation activation_from_name(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "gelu") return Activation::kGelu;
  if (name == "tanh") return Activation::kTanh;
  throw std::invalid_argument("unknown activation \"" + name + "\"");
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::kRelu:
      return torch::relu(x);
    case Activation::kGelu:
      return torch::gelu(x);
    case Activation::kTanh:
      return torch::tanh(x);
  }
  return x;
}

}  // namespace kiln::nn
