// Pieces the ONNX exporters share (private to the export module): the model's tensors by name and
// the subgraphs of common layers.
#pragma once

#include <map>
#include <string>

#include "kiln/nn/model.h"
#include "onnx_builder.h"

namespace kiln::onnx {

inline constexpr int kFloat = 1;
inline constexpr int kInt64 = 7;

/// The model's tensors by name (parameters and buffers), on the CPU.
class Weights {
 public:
  explicit Weights(nn::Model& model);
  [[nodiscard]] bool has(const std::string& n) const { return map_.count(n) != 0; }
  /// Throws ConfigError naming the tensor when the model lacks it.
  [[nodiscard]] const torch::Tensor& at(const std::string& n) const;

 private:
  std::map<std::string, torch::Tensor> map_;
};

/// y = x W^T + b of Linear `module` (MatMul with the transposed weight, then Add when it has a bias).
std::string dense(GraphBuilder& g, const Weights& w, const std::string& x, const std::string& module);
/// relu | tanh | gelu (exact, erf); throws ConfigError for another.
std::string activation(GraphBuilder& g, const std::string& x, const std::string& act, const std::string& name);
/// LayerNorm `module` over the last axis.
std::string layer_norm(GraphBuilder& g, const Weights& w, const std::string& x, const std::string& module, double eps);
/// The dense bag input "features" float32 [batch, features].
void bag_input(GraphBuilder& g, int64_t features);

/// Family exporters of onnx_vision.cpp: their "logits" output's name.
std::string export_cnn(GraphBuilder& g, nn::Model& model, const nlohmann::json& params);
std::string export_multimodal(GraphBuilder& g, nn::Model& model, const nlohmann::json& params);

}  // namespace kiln::onnx
