#include "init.h"

#include <cmath>
#include <stdexcept>

namespace kiln::nn {

void init_uniform(torch::Tensor weight, double bound) {
  torch::NoGradGuard no_grad;
  weight.uniform_(-bound, bound);
}

void init_zeros(torch::Tensor weight) {
  torch::NoGradGuard no_grad;
  weight.zero_();
}

void init_weight(torch::Tensor weight, const std::string& scheme, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  if (scheme == "xavier") {
    weight.uniform_(-1.0, 1.0).mul_(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
  } else if (scheme == "kaiming") {
    weight.uniform_(-1.0, 1.0).mul_(std::sqrt(6.0 / static_cast<double>(fan_in)));
  } else if (scheme == "normal") {
    weight.normal_(0.0, 0.02);
  } else if (scheme == "zeros") {
    weight.zero_();
  } else {
    throw std::invalid_argument("unknown init scheme \"" + scheme + "\"");
  }
}

}  // namespace kiln::nn
