// Cross-modal attention: text features attend over image features.
//   heads == 1 (the flow's formula exactly):  q = Wq·text, k = Wk·image, v = Wv·image (no biases),
//                                              out = softmax(q·kᵀ / √dim)·v
//   heads > 1 (multi-head variant):            out = LayerNorm(text + MultiheadAttention(text, image, image))
//                                              (torch.nn.MultiheadAttention: in/out projections with
//                                              biases; LayerNorm eps 1e-5)
// Shapes: text [batch, text_len, dim], image [batch, image_len, dim] → [batch, text_len, dim].
// Parameter names (persisted, never rename): heads == 1: "q_proj.weight", "k_proj.weight",
// "v_proj.weight"; heads > 1: "attention.in_proj_weight", "attention.in_proj_bias",
// "attention.out_proj.weight", "attention.out_proj.bias", "norm.weight", "norm.bias" (PyTorch's names).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace kiln::nn {

class CrossModalAttentionImpl : public torch::nn::Module {
 public:
  /// Throws ConfigError unless dim >= 1, heads >= 1 and dim % heads == 0.
  CrossModalAttentionImpl(int64_t dim, int64_t heads);
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& text, const torch::Tensor& image);
  [[nodiscard]] int64_t heads() const { return heads_; }

 private:
  int64_t dim_, heads_;
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr};
  torch::nn::MultiheadAttention attention_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(CrossModalAttention);

}  // namespace kiln::nn
