// Pieces the ONNX exporters share (private to the export module): the model's tensors by name and
// the subgraphs of common layers.
#pragma once

#include <map>
#include <string>

#include "kiln/nn/bert.h"
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

/// The BERT inputs input_ids, attention_mask, token_type_ids: int64 [batch, sequence].
void bert_inputs(GraphBuilder& g);
/// A BERT encoder's graph: its last hidden states [batch, sequence, hidden], the attention mask as
/// float [batch, sequence], and the int64 scalar 0 (for Gather of the [CLS] position).
struct BertEncoderGraph {
  std::string hidden, mask_float, zero_i64;
};
/// The encoder of `o` (embeddings, layers, pre-LN's final LayerNorm) over bert_inputs(), with the
/// weights "<prefix><Hugging Face name>" and node names prefixed the same.
BertEncoderGraph bert_encoder(GraphBuilder& g, const Weights& w, const nn::BertOptions& o, const std::string& prefix);
/// The mean of x [batch, sequence, d] over the positions mask_float marks (a row with none divides by 1).
std::string masked_mean(GraphBuilder& g, const std::string& x, const std::string& mask_float, const std::string& name);

/// Family exporters of onnx_vision.cpp: their "logits" output's name.
std::string export_cnn(GraphBuilder& g, nn::Model& model, const nlohmann::json& params);
std::string export_multimodal(GraphBuilder& g, nn::Model& model, const nlohmann::json& params);

}  // namespace kiln::onnx
