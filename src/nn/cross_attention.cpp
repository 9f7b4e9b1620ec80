#include "cross_attention.h"

#include <cmath>

#include "kiln/core/error.h"

namespace kiln::nn {

CrossModalAttentionImpl::CrossModalAttentionImpl(int64_t dim, int64_t heads) : dim_(dim), heads_(heads) {
  if (dim < 1 || heads < 1 || dim % heads != 0) {
    throw ConfigError("cross attention needs dim >= 1 divisible by heads >= 1, got dim " + std::to_string(dim) +
                      " and heads " + std::to_string(heads));
  }
  if (heads == 1) {
    auto linear = [dim] { return torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(false)); };
    q_proj_ = register_module("q_proj", linear());
    k_proj_ = register_module("k_proj", linear());
    v_proj_ = register_module("v_proj", linear());
  } else {
    attention_ = register_module("attention", torch::nn::MultiheadAttention(torch::nn::MultiheadAttentionOptions(dim, heads)));
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  }
}

torch::Tensor CrossModalAttentionImpl::forward(const torch::Tensor& text, const torch::Tensor& image) {
  if (heads_ == 1) {
    const auto q = q_proj_->forward(text), k = k_proj_->forward(image), v = v_proj_->forward(image);
    const auto scores = torch::matmul(q, k.transpose(1, 2)) / std::sqrt(static_cast<double>(dim_));
    return torch::matmul(torch::softmax(scores, -1), v);
  }
  // torch::nn::MultiheadAttention takes [length, batch, dim].
  const auto t = text.transpose(0, 1), i = image.transpose(0, 1);
  const auto attended = std::get<0>(attention_->forward(t, i, i, {}, /*need_weights=*/false)).transpose(0, 1);
  return norm_->forward(text + attended);
}

}  // namespace kiln::nn
