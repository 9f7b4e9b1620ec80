// Family "mlp": a feed-forward network whose first layer reads sparse features.
//   h_0 = act(norm_0(sum_i w_i * E[indices_i] + b_0))            E [input_dim, hidden[0]]
//   h_k = h_{k-1} + act(norm_k(L_k h_{k-1}))   when residual and hidden[k] == hidden[k-1]
//   h_k =           act(norm_k(L_k h_{k-1}))   otherwise          (k >= 1)
//   logits = L_out h_last
// Dropout follows every activation (training only); norm_k is a LayerNorm when layer_norm is set,
// the identity otherwise.
// Parameter names (persisted in model.safetensors, never rename): "embedding.weight",
// "embedding_bias", "hidden<k>.weight|bias" (k >= 1), "norm<k>.weight|bias" (layer_norm only, k >= 0),
// "output.weight|bias".
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "activation.h"
#include "kiln/nn/model.h"

namespace kiln::nn {

struct MlpParams {
  /// Hidden layer widths, first to last; each >= 1, at least one. Default [256].
  std::vector<int64_t> hidden = {256};
  /// "relu" | "gelu" | "tanh". Default "relu".
  std::string activation = "relu";
  /// Dropout probability after each hidden activation, in [0, 1). Default 0.2.
  double dropout = 0.2;
  /// LayerNorm on each hidden layer, before its activation. Default false.
  bool layer_norm = false;
  /// Skip connections between consecutive hidden layers of equal width. Default false.
  bool residual = false;
  /// Weight initialisation of every layer: "xavier" | "kaiming" | "normal" (0, 0.02). Default
  /// "xavier". Biases start at zero.
  std::string init = "xavier";
};

[[nodiscard]] nlohmann::json mlp_default_params();
/// Throws ConfigError naming the field for unknown keys, wrong types or values out of range.
[[nodiscard]] MlpParams parse_mlp_params(const nlohmann::json& params);

class MlpModel : public Model {
 public:
  MlpModel(int64_t input_dim, int64_t num_classes, const MlpParams& params);
  /// The last hidden layer (after its activation and dropout), [batch, hidden.back()].
  [[nodiscard]] torch::Tensor embed(const Batch& batch) override;
  [[nodiscard]] torch::Tensor classify(const torch::Tensor& pooled) override { return run_linear(output_, pooled); }
  [[nodiscard]] int64_t embedding_dim() const override { return params_.hidden.back(); }

 private:
  [[nodiscard]] torch::Tensor finish_layer(torch::Tensor pre, size_t k);

  MlpParams params_;
  Activation activation_;
  torch::nn::EmbeddingBag embedding_{nullptr};
  torch::Tensor embedding_bias_;
  std::vector<torch::nn::Linear> hidden_;  ///< hidden_[k - 1] is L_k
  std::vector<torch::nn::LayerNorm> norms_;
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear output_{nullptr};
};

}  // namespace kiln::nn
