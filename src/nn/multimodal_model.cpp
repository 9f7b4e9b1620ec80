// Family "multimodal": text + image classification.
//   text:   "bag" — a bag of features (bag_indices/bag_offsets/bag_weights from tfidf or hashed_ngrams)
//           pooled by an EmbeddingBag (weighted mean) into [batch, dim]: a token sequence of one;
//           "bert" — a BERT encoder (the bert family without its classifier, params `bert`) over
//           input_ids/attention_mask (wordpiece): its last hidden states projected to dim
//           (text_proj, with bias) are the token sequence [batch, L, dim]; pooled (concat, gated)
//           it is BERT's pooler output ([CLS]) projected the same way. `text_encoder: auto` (the
//           default) takes bert when the inputs hold input_ids, else bag.
//   image:  the "cnn" trunk (preset `image_preset`, no head) → its last feature grid [batch, C, h, w],
//           read as h·w patch features [batch, h·w, C] and projected to dim (image_proj, with bias).
//   fusion: "cross_attention" (default): CrossModalAttention(text tokens, patches) (heads 1: the flow's
//           softmax(q·kᵀ/√dim)·v; heads > 1: multi-head with residual + LayerNorm) → [batch, L, dim],
//           averaged over the attended text tokens (L = 1 for bag) → [batch, dim];
//           "concat": [text ; mean of the patches] → [batch, 2·dim];
//           "gated":  g = sigmoid(gate·[text ; image]); g ⊙ text + (1 − g) ⊙ image → [batch, dim].
//   head:   dropout (training) → output Linear.
// Parameter names (persisted, never rename): "text_embedding.weight" (bag) or "text.<bert names>" and
// "text_proj.weight|bias" (bert), "image.<cnn names>", "image_proj.weight|bias",
// "fusion.<CrossModalAttention names>", "gate.weight|bias" (gated), "output.weight|bias".
#include "builtin_families.h"
#include "cnn_model.h"
#include "cross_attention.h"
#include "kiln/nn/dropout.h"
#include "init.h"
#include "kiln/core/error.h"
#include "params.h"
#include "kiln/nn/sparse_embed.h"
#include "kiln/nn/bert.h"

namespace kiln::nn {
namespace {

struct MultimodalParams {
  std::string fusion = "cross_attention";
  int64_t dim = 128;
  int64_t heads = 1;
  std::string image_preset = "small";
  double dropout = 0.0;
  std::string text_encoder = "auto";
  nlohmann::json bert = nlohmann::json::object();  ///< the text side's bert params (over kTextBertDefaults)
};

/// The text side's BERT when `bert` does not say otherwise: the mini preset (4 layers, 256 wide).
const nlohmann::json kTextBertDefaults = {{"preset", "mini"}};

nlohmann::json multimodal_default_params() {
  return {{"fusion", "cross_attention"}, {"dim", 128}, {"heads", 1}, {"image_preset", "small"}, {"dropout", 0.0},
          {"text_encoder", "auto"}, {"bert", nlohmann::json::object()}};
}

MultimodalParams parse_multimodal_params(const nlohmann::json& params) {
  const ParamReader reader("multimodal", params, multimodal_default_params());
  MultimodalParams p;
  p.fusion = reader.choice("fusion", {"cross_attention", "concat", "gated"});
  p.dim = reader.integer("dim", 1);
  p.heads = reader.integer("heads", 1);
  p.image_preset = reader.choice("image_preset", {"small", "resnet18"});
  p.dropout = reader.probability("dropout");
  p.text_encoder = reader.choice("text_encoder", {"auto", "bag", "bert"});
  const auto merged = merge_params(multimodal_default_params(), params);
  if (!merged["bert"].is_object()) {
    throw ConfigError(param_field("bert") + " must be an object of bert parameters (e.g. {\"preset\": \"tiny\"}), got " +
                      merged["bert"].dump());
  }
  p.bert = merged["bert"];
  if (p.dim % p.heads != 0) {
    throw ConfigError(param_field("dim") + " (" + std::to_string(p.dim) + ") must be divisible by " +
                      param_field("heads") + " (" + std::to_string(p.heads) + ")");
  }
  return p;
}

/// The text side's BertOptions: `bert` over kTextBertDefaults, no classifier. Errors name the field
/// under model.params.bert.
BertOptions text_bert_options(const nlohmann::json& bert, int64_t vocab) {
  try {
    BertOptions o = parse_bert_params(merge_params(kTextBertDefaults, bert), vocab, 1);
    o.classifier = false;
    return o;
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("multimodal text encoder (") + param_field("bert") + "): " + e.what());
  }
}

/// "bag" or "bert": the text side `p` asks for on these inputs. Throws ConfigError when the inputs
/// lack what it reads.
std::string text_side(const MultimodalParams& p, const InputSpec& inputs) {
  const bool ids = inputs.find(kInputIds) != nullptr, bag = inputs.find(kBagIndices) != nullptr;
  const std::string side = p.text_encoder != "auto" ? p.text_encoder : ids ? "bert" : "bag";
  if (side == "bert" && !ids) {
    throw ConfigError("multimodal: the bert text encoder reads input_ids, but the inputs hold " + inputs.describe() +
                      "; give a wordpiece featurizer for the text (featurizer: [{type: wordpiece}, {type: image}]) or set " +
                      param_field("text_encoder") + ": bag");
  }
  if (side == "bag" && !bag) {
    throw ConfigError("multimodal: the bag text encoder reads bag_indices, but the inputs hold " + inputs.describe() +
                      "; give a tfidf or hashed_ngrams featurizer for the text or set " + param_field("text_encoder") +
                      ": bert");
  }
  if (side == "bert" && inputs.find(kInputIds)->shape.size() != 2) {
    throw ConfigError("multimodal: the bert text encoder reads input_ids [batch, sequence], but the wordpiece featurizer "
                      "gives windows of long texts (long_text: window); use long_text: truncate");
  }
  return side;
}

class MultimodalModel : public Model {
 public:
  MultimodalModel(const InputSpec& inputs, int64_t in_channels, int64_t num_classes, const MultimodalParams& p)
      : Model(num_classes), p_(p) {
    if (text_side(p, inputs) == "bert") {
      bert_ = register_module("text", std::make_shared<BertModel>(
                                          text_bert_options(p.bert, input_vocab_size("multimodal", inputs, kInputIds))));
      const int64_t h = bert_->options().config.hidden_size;
      text_proj_ = register_module("text_proj", torch::nn::Linear(h, p.dim));
      init_weight(text_proj_->weight, "xavier", h, p.dim);
      init_zeros(text_proj_->bias);
    } else {
      const int64_t vocab = input_vocab_size("multimodal", inputs, kBagIndices);
      text_ = register_module("text_embedding",
                              torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(vocab, p.dim).mode(torch::kSum)));
      init_weight(text_->weight, "normal", vocab, p.dim);
    }
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
    // The projections, the gate and the head run through run_linear (kiln optimize may replace
    // them); the image trunk's Conv+BN pairs and the BERT side's Linears are replaceable as the
    // nested models' own ("image.<name>", "text.<name>").
    for (const auto& l : {text_proj_, image_proj_, gate_, output_}) {
      if (l) mark_replaceable(l);
    }
  }

  torch::Tensor embed(const Batch& batch) override {
    const auto grid = image_->features(batch.at(kPixelValues));                               // [B, C, h, w]
    const auto patches = run_linear(image_proj_, grid.flatten(2).transpose(1, 2));               // [B, hw, d]
    if (bert_) {
      torch::Tensor mask;
      const auto out = bert_->encode_batch(batch, &mask);
      if (p_.fusion == "cross_attention") {
        const auto fused = fusion_->forward(run_linear(text_proj_, out.last_hidden_state), patches);  // [B, L, d]
        const auto w = mask.to(fused.scalar_type()).unsqueeze(-1);
        return (fused * w).sum(1) / w.sum(1).clamp_min(1.0);
      }
      return pool(run_linear(text_proj_, out.pooler_output), patches);
    }
    const auto text = embed_sparse(text_, bag_of(batch), Pooling::kMean);                      // [B, d]
    if (p_.fusion == "cross_attention") return fusion_->forward(text.unsqueeze(1), patches).squeeze(1);
    return pool(text, patches);
  }
  torch::Tensor classify(const torch::Tensor& pooled) override {
    return run_linear(output_, p_.dropout > 0 ? nn::dropout(pooled, p_.dropout, is_training()) : pooled);
  }
  int64_t embedding_dim() const override { return p_.fusion == "concat" ? 2 * p_.dim : p_.dim; }
  // The BERT text side keeps BERT's rules (no decay on biases and LayerNorms; the key bias gets no gradient).
  bool weight_decay_exempt(const std::string& name) const override {
    return bert_ && name.rfind(kTextPrefix, 0) == 0 && bert_->weight_decay_exempt(name.substr(kTextPrefix.size()));
  }
  /// The BERT text side (null for bag).
  [[nodiscard]] BertModel* text_bert() const { return bert_.get(); }
  bool zero_gradient_by_design(const std::string& name) const override {
    return bert_ && name.rfind(kTextPrefix, 0) == 0 && bert_->zero_gradient_by_design(name.substr(kTextPrefix.size()));
  }

 private:
  inline static const std::string kTextPrefix = "text.";

  // Fusion of a pooled text vector [B, d] with the patches, for concat and gated.
  torch::Tensor pool(const torch::Tensor& text, const torch::Tensor& patches) {
    const auto image = patches.mean(1);
    if (p_.fusion == "concat") return torch::cat({text, image}, 1);
    const auto g = torch::sigmoid(run_linear(gate_, torch::cat({text, image}, 1)));
    return g * text + (1 - g) * image;
  }

  MultimodalParams p_;
  torch::nn::EmbeddingBag text_{nullptr};
  std::shared_ptr<BertModel> bert_;
  torch::nn::Linear text_proj_{nullptr};
  std::shared_ptr<CnnModel> image_;
  torch::nn::Linear image_proj_{nullptr}, gate_{nullptr}, output_{nullptr};
  CrossModalAttention fusion_{nullptr};
};

// --init DIR: a BERT checkpoint (Hugging Face layout, or a kiln pretrain run) starts the text side;
// the image side, the projections, the fusion and the head start new.
PretrainedStart multimodal_pretrained_start(const std::string& dir, const nlohmann::json& params) {
  const auto p = parse_multimodal_params(params);
  if (p.text_encoder == "bag") {
    throw ConfigError("--init " + dir + " starts a BERT text encoder, but " + param_field("text_encoder") +
                      " is bag; use --text-encoder bert (text_encoder: bert) or drop --init");
  }
  PretrainedStart text = bert_pretrained_start(dir, p.bert);
  PretrainedStart start;
  start.params = merge_params(multimodal_default_params(), params);
  start.params["text_encoder"] = "bert";
  start.params["bert"] = text.params;
  start.featurizer = text.featurizer;
  start.load_weights = [load = text.load_weights, dir](Model& model) {
    auto* m = dynamic_cast<MultimodalModel*>(&model);
    if (!m || !m->text_bert()) throw ConfigError(dir + ": a BERT checkpoint, but the model has no BERT text encoder");
    return load(*m->text_bert());
  };
  return start;
}

}  // namespace

ModelFamily multimodal_family() {
  ModelFamily family;
  family.name = "multimodal";
  family.description =
      "text + image: bag-of-features or BERT text encoder, CNN patch grid, cross-attention/concat/gated fusion";
  family.default_params = multimodal_default_params();
  family.validate = [](const nlohmann::json& params) {
    const auto p = parse_multimodal_params(params);
    if (p.text_encoder == "bert") (void)text_bert_options(p.bert, 0);
  };
  // The text side reads the bag tensors or input_ids/attention_mask (text_side() checks which).
  family.inputs = {{kPixelValues}, {kBagIndices, kBagOffsets, kBagWeights, kInputIds, kAttentionMask, kTokenTypeIds}};
  family.pretrained = multimodal_pretrained_start;
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<MultimodalModel>(inputs, pixel_channels("multimodal", inputs), num_classes,
                                             parse_multimodal_params(params));
  };
  return family;
}

}  // namespace kiln::nn
