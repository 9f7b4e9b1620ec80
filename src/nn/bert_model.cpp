// BertModel, BertMlmHead and the "bert" family (math and names: include/kiln/nn/bert.h).
#include <ATen/ops/_transformer_encoder_layer_fwd.h>

#include <cmath>
#include <limits>
#include <string>

#include "builtin_families.h"
#include "kiln/nn/dropout.h"
#include "kiln/core/error.h"
#include "kiln/nn/bert.h"

namespace kiln::nn {

namespace {

torch::Tensor bert_activate(const torch::Tensor& x, const std::string& act) {
  if (act == "gelu" || act == "gelu_python") return torch::gelu(x);
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") return torch::gelu(x, "tanh");
  if (act == "relu") return torch::relu(x);
  if (act == "silu" || act == "swish") return torch::silu(x);
  if (act == "tanh") return torch::tanh(x);
  if (act == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  throw ConfigError("hidden_act must be one of " + std::to_string(kBertActivations.size()) + " known names, got \"" + act + "\"");
}

void init_normal(const torch::Tensor& w, double std) {
  torch::NoGradGuard no_grad;
  w.normal_(0.0, std);
}

// std 0 keeps LibTorch's own initialisation (BertInit::kTorch).
torch::nn::Linear make_linear(torch::nn::Module& parent, const std::string& name, int64_t in, int64_t out, double std) {
  auto linear = parent.register_module(name, torch::nn::Linear(in, out));
  if (std == 0) return linear;
  init_normal(linear->weight, std);
  torch::NoGradGuard no_grad;
  linear->bias.zero_();
  return linear;
}

torch::nn::LayerNorm make_norm(torch::nn::Module& parent, const std::string& name, int64_t width, double eps,
                               bool on = true) {
  if (!on) return torch::nn::LayerNorm(nullptr);
  return parent.register_module(name, torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(eps)));
}

// `norm`(x), or x when layer_norm is off (no module).
torch::Tensor apply_norm(const torch::nn::LayerNorm& norm, const torch::Tensor& x) {
  return norm.is_empty() ? x : norm.ptr()->forward(x);
}

std::shared_ptr<torch::nn::Module> make_group(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

}  // namespace

struct BertModel::Layer {
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::nn::Linear attention_dense{nullptr};
  torch::nn::LayerNorm attention_norm{nullptr};  ///< post-LN: attention.output.LayerNorm; pre_ln: attention.LayerNorm
  torch::nn::Linear intermediate{nullptr};
  torch::nn::Linear output_dense{nullptr};
  torch::nn::LayerNorm output_norm{nullptr};  ///< post-LN: output.LayerNorm; pre_ln: intermediate.LayerNorm
};

/// The fused q/k/v weights LibTorch's encoder-layer kernel takes, with the versions of the tensors
/// they were copied from (a changed version means the weights were updated since).
struct BertModel::FusedWeights {
  torch::Tensor qkv_weight, qkv_bias;
  std::vector<int64_t> versions;
};

BertModel::BertModel(const BertOptions& options) : Model(options.num_classes), options_(options) {
  options_.validate();
  const BertConfig& c = options_.config;
  const double std = options_.init == BertInit::kBert ? c.initializer_range : 0.0;
  const bool ln = options_.layer_norm;
  const int64_t H = c.hidden_size;

  auto emb = make_group(*this, "embeddings");
  word_embeddings_ = emb->register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, H).padding_idx(c.pad_token_id)));
  position_embeddings_ = emb->register_module("position_embeddings", torch::nn::Embedding(c.max_position_embeddings, H));
  token_type_embeddings_ = emb->register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, H));
  if (std > 0) {
    for (auto* e : {&word_embeddings_, &position_embeddings_, &token_type_embeddings_}) init_normal((*e)->weight, std);
  }
  {
    torch::NoGradGuard no_grad;
    word_embeddings_->weight[c.pad_token_id].zero_();
  }
  embeddings_norm_ = make_norm(*emb, "LayerNorm", H, c.layer_norm_eps, ln);

  auto encoder = make_group(*this, "encoder");
  auto list = make_group(*encoder, "layer");
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    auto layer = std::make_shared<Layer>();
    auto root = make_group(*list, std::to_string(i));
    auto attention = make_group(*root, "attention");
    auto self = make_group(*attention, "self");
    layer->query = make_linear(*self, "query", H, H, std);
    layer->key = make_linear(*self, "key", H, H, std);
    layer->value = make_linear(*self, "value", H, H, std);
    auto attention_output = make_group(*attention, "output");
    layer->attention_dense = make_linear(*attention_output, "dense", H, H, std);
    auto intermediate = make_group(*root, "intermediate");
    layer->intermediate = make_linear(*intermediate, "dense", H, c.intermediate_size, std);
    auto output = make_group(*root, "output");
    layer->output_dense = make_linear(*output, "dense", c.intermediate_size, H, std);
    if (options_.pre_ln) {
      layer->attention_norm = make_norm(*attention, "LayerNorm", H, c.layer_norm_eps, ln);
      layer->output_norm = make_norm(*intermediate, "LayerNorm", H, c.layer_norm_eps, ln);
    } else {
      layer->attention_norm = make_norm(*attention_output, "LayerNorm", H, c.layer_norm_eps, ln);
      layer->output_norm = make_norm(*output, "LayerNorm", H, c.layer_norm_eps, ln);
    }
    layers_.push_back(layer);
  }
  if (options_.pre_ln && ln) final_norm_ = make_norm(*this, "LayerNorm", H, c.layer_norm_eps);
  auto pooler = make_group(*this, "pooler");
  pooler_ = make_linear(*pooler, "dense", H, H, std);
  if (options_.classifier) classifier_ = make_linear(*this, "classifier", H, options_.num_classes, std);
  fused_.resize(layers_.size());
  // Every Linear runs through run_linear: an int8 variant (kiln optimize) may replace it.
  for (const auto& l : layers_) {
    for (const auto* linear : {&l->query, &l->key, &l->value, &l->attention_dense, &l->intermediate, &l->output_dense}) {
      mark_replaceable(*linear);
    }
  }
  mark_replaceable(pooler_);
  if (classifier_) mark_replaceable(classifier_);
}

torch::Tensor BertModel::word_embeddings_weight() const { return word_embeddings_->weight; }

void BertModel::check_inputs(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids) const {
  const BertConfig& c = options_.config;
  if (input_ids.dim() != 2) {
    throw DataError("bert: input_ids must be int64 [batch, sequence], got " + std::to_string(input_ids.dim()) +
                    " dimensions");
  }
  const int64_t length = input_ids.size(1);
  if (length > c.max_position_embeddings) {
    throw DataError("bert: input_ids has sequences of " + std::to_string(length) +
                    " tokens but the model's max_position_embeddings is " + std::to_string(c.max_position_embeddings) +
                    "; truncate the input (set max_length <= " + std::to_string(c.max_position_embeddings) +
                    " in the wordpiece preprocessor)");
  }
  if (input_ids.numel() == 0) return;
  auto range = [](const torch::Tensor& t, const char* name, int64_t size, const char* field) {
    const auto mm = torch::aminmax(t);
    const int64_t lo = std::get<0>(mm).item<int64_t>(), hi = std::get<1>(mm).item<int64_t>();
    if (lo < 0 || hi >= size) {
      throw DataError(std::string("bert: ") + name + " holds " + std::to_string(lo < 0 ? lo : hi) + ", outside [0, " +
                      std::to_string(size) + ") (" + field + " " + std::to_string(size) +
                      "); the preprocessor's vocabulary does not match the model's");
    }
  };
  range(input_ids, "input_ids", c.vocab_size, "vocab_size");
  if (token_type_ids.defined()) range(token_type_ids, "token_type_ids", c.type_vocab_size, "type_vocab_size");
}

torch::Tensor BertModel::embeddings(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                    const torch::Tensor& inputs_embeds) {
  const int64_t length = input_ids.size(1);
  auto x = inputs_embeds.defined() ? inputs_embeds : word_embeddings_->forward(input_ids);
  if (token_type_ids.defined()) {
    x = x + token_type_embeddings_->forward(token_type_ids);
  } else {
    x = x + token_type_embeddings_->weight[0];
  }
  x = x + position_embeddings_->weight.narrow(0, 0, length);
  x = apply_norm(embeddings_norm_, x);
  return nn::dropout(x, options_.config.hidden_dropout_prob, is_training());
}

torch::Tensor BertModel::layer_forward(Layer& l, const torch::Tensor& x, const torch::Tensor& additive_mask) {
  const BertConfig& c = options_.config;
  const bool training = is_training();
  const int64_t B = x.size(0), L = x.size(1), H = c.hidden_size, heads = c.num_attention_heads, d = H / heads;
  const double s = options_.residual_scale;
  auto residual = [&](const torch::Tensor& input, const torch::Tensor& branch) {
    if (s == 0.0) return branch;
    return s == 1.0 ? branch + input : branch + s * input;
  };
  auto attention = [&](const torch::Tensor& in) {
    auto split = [&](torch::nn::Linear& proj) { return run_linear(proj, in).view({B, L, heads, d}).transpose(1, 2); };
    auto scores = torch::matmul(split(l.query), split(l.key).transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
    auto probs = torch::softmax(scores + additive_mask, -1);
    probs = nn::dropout(probs, c.attention_probs_dropout_prob, training);
    auto context = torch::matmul(probs, split(l.value)).transpose(1, 2).reshape({B, L, H});
    return nn::dropout(run_linear(l.attention_dense, context), c.hidden_dropout_prob, training);
  };
  auto feed_forward = [&](const torch::Tensor& in) {
    auto h = bert_activate(run_linear(l.intermediate, in), c.hidden_act);
    return nn::dropout(run_linear(l.output_dense, h), c.hidden_dropout_prob, training);
  };
  if (options_.pre_ln) {
    auto a = residual(x, attention(apply_norm(l.attention_norm, x)));
    return residual(a, feed_forward(apply_norm(l.output_norm, a)));
  }
  auto a = apply_norm(l.attention_norm, residual(x, attention(x)));
  return apply_norm(l.output_norm, residual(a, feed_forward(a)));
}

bool BertModel::can_fuse() const {
  const auto& act = options_.config.hidden_act;
  return fused_inference_ && !is_training() && c10::InferenceMode::is_enabled() && options_.residual_scale == 1.0 &&
         !options_.pre_ln && options_.layer_norm && (act == "gelu" || act == "gelu_python" || act == "relu");
}

std::shared_ptr<const BertModel::FusedWeights> BertModel::fused_weights(size_t i) {
  const Layer& l = *layers_[i];
  std::vector<int64_t> versions;
  for (const auto* lin : {&l.query, &l.key, &l.value}) {
    versions.push_back((*lin)->weight._version());
    versions.push_back((*lin)->bias._version());
    versions.push_back(reinterpret_cast<int64_t>((*lin)->weight.data_ptr()));
  }
  std::lock_guard<std::mutex> lock(fused_mutex_);
  if (fused_[i] && fused_[i]->versions == versions) return fused_[i];
  auto f = std::make_shared<FusedWeights>();
  f->qkv_weight = torch::cat({l.query->weight, l.key->weight, l.value->weight}, 0).contiguous();
  f->qkv_bias = torch::cat({l.query->bias, l.key->bias, l.value->bias}, 0).contiguous();
  f->versions = std::move(versions);
  fused_[i] = f;
  return f;
}

BertOutputs BertModel::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& token_type_ids) {
  return encode(input_ids, attention_mask, token_type_ids, torch::Tensor());
}

BertOutputs BertModel::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& token_type_ids, const torch::Tensor& inputs_embeds) {
  check_inputs(input_ids, token_type_ids);
  if (inputs_embeds.defined() &&
      (inputs_embeds.dim() != 3 || inputs_embeds.size(0) != input_ids.size(0) || inputs_embeds.size(1) != input_ids.size(1) ||
       inputs_embeds.size(2) != options_.config.hidden_size)) {
    throw DataError("bert: inputs_embeds must be float [batch, sequence, hidden_size " +
                    std::to_string(options_.config.hidden_size) + "] matching input_ids, got " +
                    c10::str(inputs_embeds.sizes()));
  }
  if (!attention_mask.defined() || attention_mask.sizes() != input_ids.sizes()) {
    throw DataError("bert: attention_mask must have input_ids' shape [batch, sequence]");
  }
  if (token_type_ids.defined() && token_type_ids.sizes() != input_ids.sizes()) {
    throw DataError("bert: token_type_ids must have input_ids' shape [batch, sequence]");
  }
  const BertConfig& c = options_.config;
  auto x = embeddings(input_ids, token_type_ids, inputs_embeds);
  const int64_t B = input_ids.size(0), L = input_ids.size(1);
  // The fused kernel's masked softmax gives a row whose keys are all masked zeros where the
  // additive mask gives uniform weights: such batches take the op-by-op path.
  bool fuse = can_fuse() && !layers_.empty() && !has_kernels();  // kernels replace Linears one by one
  torch::Tensor padding;  // bool [B, L], true = not attended (the fused kernel's key padding mask)
  if (fuse) {
    padding = attention_mask.eq(0);
    if (L > 0 && padding.all(1).any().item<bool>()) fuse = false;
    if (!padding.any().item<bool>()) padding = torch::Tensor();
  }
  if (fuse) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = *layers_[i];
      const auto f = fused_weights(i);
      c10::optional<torch::Tensor> mask;
      c10::optional<int64_t> mask_type;
      if (padding.defined()) {
        mask = padding;
        mask_type = 1;
      }
      x = at::_transformer_encoder_layer_fwd(
          x, c.hidden_size, c.num_attention_heads, f->qkv_weight, f->qkv_bias, l.attention_dense->weight,
          l.attention_dense->bias, c.hidden_act != "relu", /*norm_first=*/false, c.layer_norm_eps,
          l.attention_norm->weight, l.attention_norm->bias, l.output_norm->weight, l.output_norm->bias,
          l.intermediate->weight, l.intermediate->bias, l.output_dense->weight, l.output_dense->bias, mask, mask_type);
    }
  } else {
    const auto additive = (1.0 - attention_mask.to(x.scalar_type()).view({B, 1, 1, L})) *
                          static_cast<double>(std::numeric_limits<float>::lowest());
    for (const auto& l : layers_) x = layer_forward(*l, x, additive);
  }
  if (final_norm_) x = final_norm_->forward(x);
  BertOutputs out;
  out.pooler_output = torch::tanh(run_linear(pooler_, x.select(1, 0)));
  out.last_hidden_state = x;
  return out;
}

torch::Tensor BertModel::embed(const Batch& batch) {
  torch::Tensor mask;
  const auto out = encode_batch(batch, &mask);
  if (options_.pooling == BertPooling::kCls) return out.pooler_output;
  const auto weights = mask.to(out.last_hidden_state.scalar_type()).unsqueeze(-1);
  return (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp_min(1.0);
}

BertOutputs BertModel::encode_batch(const Batch& batch, torch::Tensor* kept_mask) {
  auto ids = batch.at(kInputIds);
  auto mask = batch.at(kAttentionMask);
  auto types = batch.get(kTokenTypeIds);
  auto given = batch.get(kInputsEmbeds);
  if (ids.dim() == 2 && mask.sizes() == ids.sizes() && ids.size(1) > 1 && ids.size(0) > 0) {
    // Drop trailing columns no example attends to: their keys get zero weight, their outputs are unread.
    const auto attended = mask.ne(0).any(0).nonzero();
    const int64_t keep = attended.numel() > 0 ? attended.max().item<int64_t>() + 1 : 1;
    if (keep < ids.size(1)) {
      ids = ids.narrow(1, 0, keep);
      mask = mask.narrow(1, 0, keep);
      if (types.defined() && types.sizes() == batch.at(kInputIds).sizes()) types = types.narrow(1, 0, keep);
      if (given.defined() && given.dim() == 3 && given.size(1) == batch.at(kInputIds).size(1)) given = given.narrow(1, 0, keep);
    }
  }
  if (kept_mask) *kept_mask = mask;
  return encode(ids, mask, types, given);
}

bool BertModel::weight_decay_exempt(const std::string& name) const {
  const auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with("bias") || name.find("LayerNorm.") != std::string::npos || name.rfind("LayerNorm", 0) == 0;
}

torch::Tensor BertModel::classify(const torch::Tensor& pooled) {
  if (!classifier_) throw Error("bert: this encoder was built without a classifier (BertOptions::classifier)");
  return run_linear(classifier_, nn::dropout(pooled, options_.classifier_dropout, is_training()));
}

BertMlmHead::BertMlmHead(const BertConfig& config, torch::Tensor word_embeddings)
    : hidden_act_(config.hidden_act), decoder_weight_(std::move(word_embeddings)) {
  config.validate("bert mlm head: ");
  if (decoder_weight_.dim() != 2 || decoder_weight_.size(0) != config.vocab_size ||
      decoder_weight_.size(1) != config.hidden_size) {
    throw ConfigError("bert mlm head: the tied word embeddings must be [vocab_size " + std::to_string(config.vocab_size) +
                      ", hidden_size " + std::to_string(config.hidden_size) + "]");
  }
  auto transform = register_module("transform", std::make_shared<torch::nn::Module>());
  dense_ = make_linear(*transform, "dense", config.hidden_size, config.hidden_size, config.initializer_range);
  norm_ = make_norm(*transform, "LayerNorm", config.hidden_size, config.layer_norm_eps);
  bias_ = register_parameter("bias", torch::zeros({config.vocab_size}));
}

torch::Tensor BertMlmHead::forward(const torch::Tensor& hidden) {
  auto h = norm_->forward(bert_activate(dense_->forward(hidden), hidden_act_));
  return torch::nn::functional::linear(h, decoder_weight_, bias_);
}

ModelFamily bert_family() {
  ModelFamily family;
  family.name = "bert";
  family.description = "BERT encoder (Hugging Face BertModel names and math) with a classification head";
  family.default_params = bert_default_params();
  family.validate = [](const nlohmann::json& params) { (void)parse_bert_params(params, 0, 2); };
  family.inputs = {{kInputIds, kAttentionMask}, {kTokenTypeIds}};
  family.pretrained = bert_pretrained_start;
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<BertModel>(
        parse_bert_params(params, input_vocab_size("bert", inputs, kInputIds), num_classes));
  };
  return family;
}

}  // namespace kiln::nn
