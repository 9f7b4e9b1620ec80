// Family "multimodal": text + image classification.
//   text:   a bag of features (bag_indices/bag_offsets/bag_weights from tfidf or hashed_ngrams) pooled
//           by an EmbeddingBag (weighted mean) into [batch, dim]: a token sequence of one.
//   image:  the "cnn" trunk (preset `image_preset`, no head) → its last feature grid [batch, C, h, w],
//           read as h·w patch features [batch, h·w, C] and projected to dim (image_proj, with bias).
//   fusion: "cross_attention" (default): CrossModalAttention(text, patches) (heads 1: the flow's
//           softmax(q·kᵀ/√dim)·v; heads > 1: multi-head with residual + LayerNorm) → [batch, dim];
//           "concat": [text ; mean of the patches] → [batch, 2·dim];
//           "gated":  g = sigmoid(gate·[text ; image]); g ⊙ text + (1 − g) ⊙ image → [batch, dim].
//   head:   dropout (training) → output Linear.
// Parameter names (persisted, never rename): "text_embedding.weight", "image.<cnn names>",
// "image_proj.weight|bias", "fusion.<CrossModalAttention names>", "gate.weight|bias" (gated),
// "output.weight|bias".
#include "builtin_families.h"
#include "cnn_model.h"
#include "cross_attention.h"
#include "kiln/nn/dropout.h"
#include "init.h"
#include "kiln/core/error.h"
#include "params.h"
#include "kiln/nn/sparse_embed.h"

namespace kiln::nn {
namespace {

struct MultimodalParams {
  std::string fusion = "cross_attention";
  int64_t dim = 128;
  int64_t heads = 1;
  std::string image_preset = "small";
  double dropout = 0.0;
};

nlohmann::json multimodal_default_params() {
  return {{"fusion", "cross_attention"}, {"dim", 128}, {"heads", 1}, {"image_preset", "small"}, {"dropout", 0.0}};
}

MultimodalParams parse_multimodal_params(const nlohmann::json& params) {
  const ParamReader reader("multimodal", params, multimodal_default_params());
  MultimodalParams p;
  p.fusion = reader.choice("fusion", {"cross_attention", "concat", "gated"});
  p.dim = reader.integer("dim", 1);
  p.heads = reader.integer("heads", 1);
  p.image_preset = reader.choice("image_preset", {"small", "resnet18"});
  p.dropout = reader.probability("dropout");
  if (p.dim % p.heads != 0) {
    throw ConfigError(param_field("dim") + " (" + std::to_string(p.dim) + ") must be divisible by " +
                      param_field("heads") + " (" + std::to_string(p.heads) + ")");
  }
  return p;
}

class MultimodalModel : public Model {
 public:
  MultimodalModel(int64_t vocab, int64_t in_channels, int64_t num_classes, const MultimodalParams& p)
      : Model(num_classes), p_(p) {
    text_ = register_module("text_embedding",
                            torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(vocab, p.dim).mode(torch::kSum)));
    init_weight(text_->weight, "normal", vocab, p.dim);
    const CnnParams cnn = parse_cnn_params({{"preset", p.image_preset}});
    image_ = register_module("image", make_cnn_encoder(in_channels, cnn));
    const int64_t c = cnn.widths.back();
    image_proj_ = register_module("image_proj", torch::nn::Linear(c, p.dim));
    init_weight(image_proj_->weight, "xavier", c, p.dim);
    init_zeros(image_proj_->bias);
    int64_t fused = p.dim;
    if (p.fusion == "cross_attention") {
      fusion_ = register_module("fusion", CrossModalAttention(p.dim, p.heads));
    } else if (p.fusion == "gated") {
      gate_ = register_module("gate", torch::nn::Linear(2 * p.dim, p.dim));
    } else {
      fused = 2 * p.dim;
    }
    output_ = register_module("output", torch::nn::Linear(fused, num_classes));
    init_weight(output_->weight, "xavier", fused, num_classes);
    init_zeros(output_->bias);
  }

  torch::Tensor embed(const Batch& batch) override {
    const auto text = embed_sparse(text_, bag_of(batch), Pooling::kMean);                      // [B, d]
    const auto grid = image_->features(batch.at(kPixelValues));                               // [B, C, h, w]
    const auto patches = image_proj_->forward(grid.flatten(2).transpose(1, 2));               // [B, hw, d]
    if (p_.fusion == "cross_attention") return fusion_->forward(text.unsqueeze(1), patches).squeeze(1);
    const auto image = patches.mean(1);
    if (p_.fusion == "concat") return torch::cat({text, image}, 1);
    const auto g = torch::sigmoid(gate_->forward(torch::cat({text, image}, 1)));
    return g * text + (1 - g) * image;
  }
  torch::Tensor classify(const torch::Tensor& pooled) override {
    return output_->forward(p_.dropout > 0 ? nn::dropout(pooled, p_.dropout, is_training()) : pooled);
  }
  int64_t embedding_dim() const override { return p_.fusion == "concat" ? 2 * p_.dim : p_.dim; }

 private:
  MultimodalParams p_;
  torch::nn::EmbeddingBag text_{nullptr};
  std::shared_ptr<CnnModel> image_;
  torch::nn::Linear image_proj_{nullptr}, gate_{nullptr}, output_{nullptr};
  CrossModalAttention fusion_{nullptr};
};

}  // namespace

ModelFamily multimodal_family() {
  ModelFamily family;
  family.name = "multimodal";
  family.description = "text + image: bag-of-features text encoder, CNN patch grid, cross-attention/concat/gated fusion";
  family.default_params = multimodal_default_params();
  family.validate = [](const nlohmann::json& params) { (void)parse_multimodal_params(params); };
  family.inputs = {{kBagIndices, kBagOffsets, kPixelValues}, {kBagWeights}};
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<MultimodalModel>(input_vocab_size("multimodal", inputs, kBagIndices),
                                             pixel_channels("multimodal", inputs), num_classes,
                                             parse_multimodal_params(params));
  };
  return family;
}

}  // namespace kiln::nn
