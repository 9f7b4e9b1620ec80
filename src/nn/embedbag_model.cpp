#include "embedbag_model.h"

#include "builtin_families.h"
#include "kiln/nn/dropout.h"
#include "init.h"
#include "params.h"

namespace kiln::nn {

nlohmann::json embedbag_default_params() {
  return {{"dim", 100},         {"pooling", "mean"}, {"hidden", 0},
          {"activation", "relu"}, {"dropout", 0.0},   {"init", "xavier"}};
}

EmbedBagParams parse_embedbag_params(const nlohmann::json& params) {
  const ParamReader reader("embedbag", params, embedbag_default_params());
  EmbedBagParams out;
  out.dim = reader.integer("dim", 1);
  out.pooling = reader.choice("pooling", {"mean", "sum", "sqrtn"});
  out.hidden = reader.integer("hidden", 0);
  out.activation = reader.choice("activation", kActivationNames);
  out.dropout = reader.probability("dropout");
  out.init = reader.choice("init", {"xavier", "fasttext"});
  return out;
}

EmbedBagModel::EmbedBagModel(int64_t input_dim, int64_t num_classes, const EmbedBagParams& params)
    : Model(num_classes),
      params_(params),
      activation_(activation_from_name(params.activation)),
      pooling_(params.pooling == "sum" ? Pooling::kSum : params.pooling == "sqrtn" ? Pooling::kSqrtN : Pooling::kMean) {
  // Built on a table of its own (LibTorch's constructor would fill it with normal draws first, and
  // fasttext's has 2^19 x 64 entries), filled by the fast generator.
  auto table = empty_table(input_dim, params_.dim);
  init_uniform_fast(table, 1.0 / static_cast<double>(params_.dim));
  embedding_ = register_module(
      "embedding",
      torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(input_dim, params_.dim).mode(torch::kSum)._weight(table)));

  int64_t width = params_.dim;
  if (params_.hidden > 0) {
    hidden_ = register_module("hidden", torch::nn::Linear(params_.dim, params_.hidden));
    init_weight(hidden_->weight, "xavier", params_.dim, params_.hidden);
    init_zeros(hidden_->bias);
    width = params_.hidden;
  }
  if (params_.dropout > 0.0) {
    dropout_ = register_module("dropout", torch::nn::Dropout(torch::nn::DropoutOptions(params_.dropout)));
  }
  output_ = register_module("output", torch::nn::Linear(width, num_classes));
  init_weight(output_->weight, params_.init == "fasttext" ? "zeros" : "xavier", width, num_classes);
  init_zeros(output_->bias);
}

torch::Tensor EmbedBagModel::embed(const Batch& batch) {
  auto h = embed_sparse(embedding_, bag_of(batch), pooling_);
  if (hidden_) h = activate(hidden_->forward(h), activation_);
  if (dropout_) h = nn::dropout(h, dropout_->options.p(), dropout_->is_training());
  return h;
}

std::optional<BagLinearParts> EmbedBagModel::bag_linear_parts() {
  if (hidden_ || dropout_) return std::nullopt;
  const auto pooling = pooling_ == Pooling::kSum    ? BagLinearParts::Pooling::kSum
                       : pooling_ == Pooling::kMean ? BagLinearParts::Pooling::kMean
                                                    : BagLinearParts::Pooling::kSqrtN;
  return BagLinearParts{embedding_->weight, output_->weight, output_->bias, pooling};
}

ModelFamily embedbag_family() {
  ModelFamily family;
  family.name = "embedbag";
  family.description = "fastText-style: pooled feature embeddings, optional hidden layer, linear output";
  family.default_params = embedbag_default_params();
  family.validate = [](const nlohmann::json& params) { (void)parse_embedbag_params(params); };
  family.inputs = {{kBagIndices, kBagOffsets}, {kBagWeights}};
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<EmbedBagModel>(input_vocab_size("embedbag", inputs, kBagIndices), num_classes, parse_embedbag_params(params));
  };
  return family;
}

}  // namespace kiln::nn
