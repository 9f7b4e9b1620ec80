#include "mlp_model.h"

#include "builtin_families.h"
#include "kiln/nn/dropout.h"
#include "init.h"
#include "params.h"
#include "kiln/nn/sparse_embed.h"

namespace kiln::nn {

nlohmann::json mlp_default_params() {
  return {{"hidden", {256}},      {"activation", "relu"}, {"dropout", 0.2},
          {"layer_norm", false}, {"residual", false},    {"init", "xavier"}};
}

MlpParams parse_mlp_params(const nlohmann::json& params) {
  const ParamReader reader("mlp", params, mlp_default_params());
  MlpParams out;
  out.hidden = reader.integer_list("hidden", 1);
  out.activation = reader.choice("activation", kActivationNames);
  out.dropout = reader.probability("dropout");
  out.layer_norm = reader.boolean("layer_norm");
  out.residual = reader.boolean("residual");
  out.init = reader.choice("init", {"xavier", "kaiming", "normal"});
  return out;
}

MlpModel::MlpModel(int64_t input_dim, int64_t num_classes, const MlpParams& params)
    : Model(num_classes), params_(params), activation_(activation_from_name(params.activation)) {
  const auto& widths = params_.hidden;
  embedding_ = register_module("embedding", embedding_bag_on_table(input_dim, widths[0]));
  embedding_bias_ = register_parameter("embedding_bias", torch::zeros({widths[0]}));
  init_weight(embedding_->weight, params_.init, input_dim, widths[0]);

  for (size_t k = 1; k < widths.size(); ++k) {
    auto layer = register_module("hidden" + std::to_string(k), torch::nn::Linear(widths[k - 1], widths[k]));
    init_weight(layer->weight, params_.init, widths[k - 1], widths[k]);
    init_zeros(layer->bias);
    hidden_.push_back(layer);
    mark_replaceable(layer);
  }
  if (params_.layer_norm) {
    for (size_t k = 0; k < widths.size(); ++k) {
      norms_.push_back(register_module("norm" + std::to_string(k),
                                       torch::nn::LayerNorm(torch::nn::LayerNormOptions({widths[k]}))));
    }
  }
  if (params_.dropout > 0.0) {
    dropout_ = register_module("dropout", torch::nn::Dropout(torch::nn::DropoutOptions(params_.dropout)));
  }
  output_ = register_module("output", torch::nn::Linear(widths.back(), num_classes));
  init_weight(output_->weight, params_.init, widths.back(), num_classes);
  init_zeros(output_->bias);
  mark_replaceable(output_);
}

torch::Tensor MlpModel::finish_layer(torch::Tensor pre, size_t k) {
  if (params_.layer_norm) pre = norms_[k]->forward(pre);
  auto h = activate(pre, activation_);
  if (dropout_) h = nn::dropout(h, dropout_->options.p(), dropout_->is_training());
  return h;
}

torch::Tensor MlpModel::embed(const Batch& batch) {
  auto h = finish_layer(embed_sparse(embedding_, bag_of(batch), Pooling::kSum) + embedding_bias_, 0);
  const auto& widths = params_.hidden;
  for (size_t k = 1; k < widths.size(); ++k) {
    auto f = finish_layer(run_linear(hidden_[k - 1], h), k);
    h = (params_.residual && widths[k] == widths[k - 1]) ? h + f : f;
  }
  return h;
}

ModelFamily mlp_family() {
  ModelFamily family;
  family.name = "mlp";
  family.description = "feed-forward network: sparse EmbeddingBag first layer, then Linear layers";
  family.default_params = mlp_default_params();
  family.validate = [](const nlohmann::json& params) { (void)parse_mlp_params(params); };
  family.inputs = {{kBagIndices, kBagOffsets}, {kBagWeights}};
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<MlpModel>(input_vocab_size("mlp", inputs, kBagIndices), num_classes, parse_mlp_params(params));
  };
  return family;
}

}  // namespace kiln::nn
