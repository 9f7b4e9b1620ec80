// Family "linear": softmax regression over sparse features.
//   logits = sum_i w_i * W[indices_i] + b,  W [input_dim, num_classes], b [num_classes]
// Parameter names (persisted in model.safetensors, never rename): "embedding.weight", "bias".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/nn/model.h"

namespace kiln::nn {

struct LinearParams {
  /// W's initialisation: "xavier" | "kaiming" | "normal" (0, 0.02) | "zeros". Default "xavier".
  /// b starts at zero.
  std::string init = "xavier";
};

/// Defaults of every "linear" parameter, as persisted in a resolved spec.
[[nodiscard]] nlohmann::json linear_default_params();
/// Throws ConfigError naming the field for unknown keys, wrong types or values out of range.
[[nodiscard]] LinearParams parse_linear_params(const nlohmann::json& params);

class LinearModel : public Model {
 public:
  LinearModel(int64_t input_dim, int64_t num_classes, const LinearParams& params);
  /// The class scores before the bias, [batch, num_classes].
  [[nodiscard]] torch::Tensor embed(const Batch& batch) override;
  [[nodiscard]] torch::Tensor classify(const torch::Tensor& pooled) override { return pooled + bias_; }
  [[nodiscard]] int64_t embedding_dim() const override { return num_classes(); }
  [[nodiscard]] std::optional<LinearParts> linear_parts() override { return LinearParts{embedding_->weight, bias_}; }

 private:
  torch::nn::EmbeddingBag embedding_{nullptr};
  torch::Tensor bias_;
};

}  // namespace kiln::nn
