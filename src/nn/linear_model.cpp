#include "linear_model.h"

#include "builtin_families.h"
#include "init.h"
#include "params.h"
#include "kiln/nn/sparse_embed.h"

namespace kiln::nn {

nlohmann::json linear_default_params() { return {{"init", "xavier"}}; }

LinearParams parse_linear_params(const nlohmann::json& params) {
  const ParamReader reader("linear", params, linear_default_params());
  LinearParams out;
  out.init = reader.choice("init", kInitSchemes);
  return out;
}

LinearModel::LinearModel(int64_t input_dim, int64_t num_classes, const LinearParams& params)
    : Model(num_classes) {
  embedding_ = register_module("embedding", embedding_bag_on_table(input_dim, num_classes));
  bias_ = register_parameter("bias", torch::zeros({num_classes}));
  init_weight(embedding_->weight, params.init, input_dim, num_classes);
}

torch::Tensor LinearModel::embed(const Batch& batch) {
  return embed_sparse(embedding_, bag_of(batch), Pooling::kSum);
}

ModelFamily linear_family() {
  ModelFamily family;
  family.name = "linear";
  family.description = "softmax regression over sparse features (EmbeddingBag sum + bias)";
  family.default_params = linear_default_params();
  family.validate = [](const nlohmann::json& params) { (void)parse_linear_params(params); };
  family.inputs = {{kBagIndices, kBagOffsets}, {kBagWeights}};
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<LinearModel>(input_vocab_size("linear", inputs, kBagIndices), num_classes, parse_linear_params(params));
  };
  return family;
}

}  // namespace kiln::nn
