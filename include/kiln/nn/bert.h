// Family "bert": Hugging Face's BertModel (post-LN Transformer encoder) with a classification head,
// its MLM head, and Hugging Face checkpoint directories (config.json + model.safetensors).
//
//   x_0 = LayerNorm(word[input_ids] + token_type[token_type_ids] + position[0..L))
//   per layer (post-LN):  a = LN(s x + Attn(x)),   x' = LN(s a + W_o act(W_i a))     (s = residual_scale)
//   per layer (pre_ln):   a = s x + Attn(LN(x)),   x' = s a + W_o act(W_i LN(a)),  final LN after the last
//   (residual_scale s = 0 removes the residual connections; layer_norm: false makes every LN above,
//   the embeddings' included, the identity: both are the gradient-vanishing ablations of
//   bench/gradient_remedies.sh, not models anyone should deploy)
//   Attn: softmax(Q K^T / sqrt(d) + (1 - attention_mask) * float_min) V, heads concatenated, dense
//   pooled: cls = tanh(pooler.dense(x[:, 0])) (HF's pooler_output); mean = masked mean of x
//   logits = classifier(dropout(pooled))
//
// Parameter names are Hugging Face's (persisted in model.safetensors, never rename):
// embeddings.{word_embeddings,position_embeddings,token_type_embeddings}.weight,
// embeddings.LayerNorm.{weight,bias}, encoder.layer.<i>.attention.self.{query,key,value}.{weight,bias},
// encoder.layer.<i>.attention.output.{dense,LayerNorm}.{weight,bias},
// encoder.layer.<i>.intermediate.dense.{weight,bias}, encoder.layer.<i>.output.{dense,LayerNorm}.{weight,bias},
// pooler.dense.{weight,bias}, classifier.{weight,bias}. The pre_ln variant (not a Hugging Face BERT)
// names its norms as RobertaPreLayerNorm does: encoder.layer.<i>.attention.LayerNorm,
// encoder.layer.<i>.intermediate.LayerNorm and the final LayerNorm.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/nn/model.h"

namespace kiln::nn {

/// hidden_act values accepted (Hugging Face's names; "gelu" is the exact erf form, "gelu_new",
/// "gelu_pytorch_tanh" and "gelu_fast" the tanh approximation).
inline const std::vector<std::string> kBertActivations = {"gelu",   "gelu_new", "gelu_pytorch_tanh", "gelu_fast",
                                                          "gelu_python", "relu", "silu", "swish", "tanh", "quick_gelu"};

/// The fields of Hugging Face's BertConfig (config.json) that the model reads. Defaults are
/// BertConfig's (bert-base-uncased).
struct BertConfig {
  int64_t vocab_size = 30522;              ///< rows of word_embeddings
  int64_t hidden_size = 768;               ///< width of every hidden state; divisible by num_attention_heads
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;        ///< width of the feed-forward layer
  std::string hidden_act = "gelu";         ///< one of kBertActivations
  int64_t max_position_embeddings = 512;   ///< longest sequence (tokens, [CLS] and [SEP] included)
  int64_t type_vocab_size = 2;             ///< segment ids (token_type_ids) in [0, type_vocab_size)
  double layer_norm_eps = 1e-12;
  double hidden_dropout_prob = 0.1;        ///< dropout on embeddings and sublayer outputs, [0, 1)
  double attention_probs_dropout_prob = 0.1;
  double initializer_range = 0.02;         ///< std of the normal initialisation, > 0
  int64_t pad_token_id = 0;                ///< its word embedding row starts at zero and gets no gradient

  /// Reads config.json's object `j` (missing fields take BertConfig's defaults; unknown ones are
  /// ignored, as transformers does). Throws ConfigError naming `where` and the field; validates.
  [[nodiscard]] static BertConfig from_json(const nlohmann::json& j, const std::string& where);
  /// config.json as transformers writes it for BertModel ("model_type": "bert").
  [[nodiscard]] nlohmann::json to_json() const;
  /// Throws ConfigError naming `where`, the field, its value and the accepted values.
  void validate(const std::string& where) const;
};

enum class BertPooling { kCls, kMean };

/// How a new BertModel's weights start. Persisted in model specs as "bert" | "torch": never rename.
enum class BertInit {
  kBert,   ///< BERT's: normal(0, initializer_range) weights, zero biases, LayerNorm 1 and 0
  kTorch,  ///< LibTorch's module defaults: Linear kaiming_uniform(a = sqrt 5), Embedding normal(0, 1)
};

/// Everything a BertModel is built from.
struct BertOptions {
  BertConfig config;
  /// kCls: the pooler's output (tanh(dense(h[CLS]))), as BertForSequenceClassification. kMean: the
  /// mean of the last hidden states over the tokens attention_mask marks. Default kCls.
  BertPooling pooling = BertPooling::kCls;
  /// Dropout before the classifier, [0, 1). Default 0.1 (HF: hidden_dropout_prob).
  double classifier_dropout = 0.1;
  /// Pre-LN layers (LayerNorm before each sublayer, a final LayerNorm): trains deep stacks without
  /// warm-up when post-LN gradients vanish. Not loadable by transformers' BertModel. Default false.
  bool pre_ln = false;
  /// Scale of the residual branch (x in LN(s x + F(x))), >= 0; > 1 (DeepNorm) steadies deep post-LN
  /// stacks; 0 removes the residual connections (an ablation). Default 1 (BERT).
  double residual_scale = 1.0;
  /// LayerNorms (embeddings, every layer, pre_ln's final one). false: none is created and each is
  /// the identity (an ablation; its checkpoint then lacks the LayerNorm tensors). Default true.
  bool layer_norm = true;
  /// Weight initialisation of a new model (a loaded checkpoint overwrites it). Default kBert.
  BertInit init = BertInit::kBert;
  int64_t num_classes = 2;
  /// Builds the classifier. false: an encoder inside another model (the multimodal family's text
  /// side): no classifier.* parameters, and classify() throws. Default true.
  bool classifier = true;

  /// Throws ConfigError naming the field.
  void validate() const;
};

/// Size presets (num_hidden_layers, hidden_size, num_attention_heads, intermediate_size):
/// tiny (2, 128, 2, 512), mini (4, 256, 4, 1024), small (4, 512, 8, 2048), medium (8, 512, 8, 2048),
/// base (12, 768, 12, 3072). Persisted in model specs: never rename.
inline const std::vector<std::string> kBertPresets = {"tiny", "mini", "small", "medium", "base", "large"};

/// Sets the four size fields of `config` to preset `name`; throws ConfigError for another name.
void apply_bert_preset(const std::string& name, BertConfig& config);

/// The outputs of BertModel::encode.
struct BertOutputs {
  torch::Tensor last_hidden_state;  ///< [batch, sequence, hidden]
  torch::Tensor pooler_output;      ///< [batch, hidden]: tanh(pooler.dense(last_hidden_state[:, 0]))
};

class BertModel : public Model {
 public:
  /// Weights initialised as options.init says (default BERT's: normal(0, initializer_range) for
  /// Linear and Embedding weights, zeros for biases and the padding row, LayerNorm weight 1 and bias 0).
  explicit BertModel(const BertOptions& options);

  /// The pooled vector (pooling cls: pooler_output; mean: the masked mean), [batch, hidden].
  /// Reads input_ids and attention_mask, and token_type_ids when present (zeros otherwise).
  /// Trailing columns no example attends to are dropped first (the result is the same). With
  /// inputs_embeds [batch, sequence, hidden] in the batch, those replace the word-embedding lookup
  /// (position and token-type embeddings are still added): gradients then reach them.
  /// Throws DataError when a sequence is longer than max_position_embeddings or an id is out of range.
  [[nodiscard]] torch::Tensor embed(const Batch& batch) override;
  /// classifier(dropout(pooled)).
  [[nodiscard]] torch::Tensor classify(const torch::Tensor& pooled) override;
  [[nodiscard]] int64_t embedding_dim() const override { return options_.config.hidden_size; }
  /// Biases and LayerNorm weights (names ending in "bias" or holding "LayerNorm."), as Hugging
  /// Face's Trainer leaves them out of weight decay.
  [[nodiscard]] bool weight_decay_exempt(const std::string& name) const override;
  /// attention.self.key.bias: q . (k + b) shifts every key's score by q . b, which softmax ignores.
  [[nodiscard]] bool zero_gradient_by_design(const std::string& name) const override {
    return name.size() >= 23 && name.compare(name.size() - 23, 23, "attention.self.key.bias") == 0;
  }
  /// Changes how embed() pools (kiln embed --pooling on a model trained with the other one).
  void set_pooling(BertPooling pooling) { options_.pooling = pooling; }

  /// The encoder on int64 [batch, sequence] tensors; `token_type_ids` may be undefined (zeros).
  /// Op by op; with set_fused_inference(true), under InferenceMode in eval() mode, through LibTorch's
  /// fused encoder-layer kernel where the configuration allows it (gelu or relu, residual_scale 1).
  [[nodiscard]] BertOutputs encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& token_type_ids);
  /// The same with the word embeddings given ([batch, sequence, hidden]; undefined = looked up).
  [[nodiscard]] BertOutputs encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& token_type_ids, const torch::Tensor& inputs_embeds);
  /// encode() on a batch's tensors as embed() reads them (trailing columns no example attends to
  /// dropped first); `kept_mask`, when given, gets the attention mask of the columns kept.
  [[nodiscard]] BertOutputs encode_batch(const Batch& batch, torch::Tensor* kept_mask = nullptr);

  [[nodiscard]] const BertOptions& options() const { return options_; }
  /// embeddings.word_embeddings.weight (what an MLM head's decoder is tied to).
  [[nodiscard]] torch::Tensor word_embeddings_weight() const;
  /// Runs inference through at::_transformer_encoder_layer_fwd (true) or op by op (false, the
  /// default: in LibTorch 1.13 on the CPU the fused kernel measured ~25% slower at BERT-base size,
  /// bench/bert_vs_torch.sh). Both match Hugging Face's math within 1e-5.
  void set_fused_inference(bool on) { fused_inference_ = on; }

 private:
  struct Layer;
  struct FusedWeights;

  [[nodiscard]] torch::Tensor embeddings(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                         const torch::Tensor& inputs_embeds);
  [[nodiscard]] torch::Tensor layer_forward(Layer& layer, const torch::Tensor& x, const torch::Tensor& additive_mask);
  [[nodiscard]] bool can_fuse() const;
  [[nodiscard]] std::shared_ptr<const FusedWeights> fused_weights(size_t layer);
  void check_inputs(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids) const;

  BertOptions options_;
  bool fused_inference_ = false;
  torch::nn::Embedding word_embeddings_{nullptr};
  torch::nn::Embedding position_embeddings_{nullptr};
  torch::nn::Embedding token_type_embeddings_{nullptr};
  torch::nn::LayerNorm embeddings_norm_{nullptr};
  std::vector<std::shared_ptr<Layer>> layers_;
  torch::nn::LayerNorm final_norm_{nullptr};  ///< pre_ln only
  torch::nn::Linear pooler_{nullptr};
  torch::nn::Linear classifier_{nullptr};
  std::mutex fused_mutex_;  ///< guards fused_
  std::vector<std::shared_ptr<const FusedWeights>> fused_;
};

/// BertForMaskedLM's head (cls.predictions): vocabulary logits from hidden states,
///   decoder(LayerNorm(act(transform.dense(h)))), decoder weight tied to the word embeddings, plus `bias`.
/// Own parameter names (under "cls.predictions." in a checkpoint): transform.dense.{weight,bias},
/// transform.LayerNorm.{weight,bias}, bias. The tied weight is not a parameter of the head.
class BertMlmHead : public torch::nn::Module {
 public:
  /// `word_embeddings` [vocab_size, hidden_size] is shared, not copied.
  BertMlmHead(const BertConfig& config, torch::Tensor word_embeddings);
  /// [..., hidden] -> [..., vocab_size].
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& hidden);

 private:
  std::string hidden_act_;
  torch::nn::Linear dense_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::Tensor decoder_weight_;
  torch::Tensor bias_;
};

/// What load_hf_checkpoint did with the file's tensors, for the caller to report.
struct BertLoadReport {
  std::string source;                   ///< the model.safetensors path
  bool prefixed = false;                ///< the file's names carry "bert." (BertFor* layouts)
  std::vector<std::string> missing;     ///< model tensors the file lacks (left as initialised)
  std::vector<std::string> unexpected;  ///< file tensors the model has no use for
  std::vector<std::string> heads_ignored;  ///< cls.predictions.* / cls.seq_relationship.* (pre-training heads)
  bool classifier_loaded = false;
  /// Why the classifier was re-initialised ("" when loaded): absent from the checkpoint, or its
  /// class count differs.
  std::string classifier_reinitialized;
  std::optional<std::filesystem::path> vocab;  ///< vocab.txt when the directory has one
};

struct BertLoadOptions {
  /// Classes of the classifier; unset: config.json's id2label (or num_labels) when it has one, else 2.
  std::optional<int64_t> num_classes;
  /// Unset: config.json's "kiln": {"pooling"} when Kiln wrote it, else kCls.
  std::optional<BertPooling> pooling;
  /// Unset: config.json's classifier_dropout when set, else hidden_dropout_prob.
  std::optional<double> classifier_dropout;
};

struct LoadedBert {
  std::shared_ptr<BertModel> model;
  BertLoadReport report;
};

/// Loads a Hugging Face checkpoint directory: config.json and model.safetensors (BertModel,
/// BertForSequenceClassification or BertForMaskedLM, with or without the "bert." prefix). F16,
/// BF16 and F64 weights are converted to float32. Throws IoError/ConfigError/ArtifactError naming
/// the file: config.json missing or invalid, only pytorch_model.bin present (with the command that
/// converts it), a tensor whose shape disagrees with config.json (tensor, file, expected and found).
[[nodiscard]] LoadedBert load_hf_checkpoint(const std::filesystem::path& dir, const BertLoadOptions& options = {});

/// Writes `model` as a BertForSequenceClassification checkpoint directory: config.json (with
/// num_labels' id2label and Kiln's own fields pooling/pre_ln/residual_scale under "kiln") and
/// model.safetensors with "bert."-prefixed names plus classifier.*, atomically (a failure leaves
/// `dir` as it was). load_hf_checkpoint reads it back.
void save_hf_checkpoint(BertModel& model, const std::filesystem::path& dir);

/// Writes `model` and its MLM head as a BertForMaskedLM checkpoint directory, atomically:
/// config.json (architectures ["BertForMaskedLM"], Kiln's own fields under "kiln"),
/// model.safetensors ("bert."-prefixed encoder names without the pooler, as BertForMaskedLM has
/// none, plus cls.predictions.{transform.dense,transform.LayerNorm}.{weight,bias} and
/// cls.predictions.bias; the decoder weight is tied to the word embeddings and not stored) and
/// vocab.txt (`vocab_text`). load_hf_checkpoint and transformers' BertForMaskedLM read it.
void save_hf_mlm_checkpoint(BertModel& model, BertMlmHead& head, const std::string& vocab_text,
                            const std::filesystem::path& dir);

/// Copies a checkpoint's cls.predictions.* tensors (model.safetensors in `dir`) into `head`.
/// Throws ArtifactError naming the file and the tensor when one is missing or has another shape.
void load_hf_mlm_head(const std::filesystem::path& dir, BertMlmHead& head);

/// The "bert" family's `kiln train --init DIR`: reads DIR/config.json (the model's size and
/// settings), DIR/vocab.txt (the featurizer's vocabulary; DIR/tokenizer_config.json's
/// do_lower_case when present) and DIR/model.safetensors (every weight but the classifier, which
/// starts new). Throws IoError/ArtifactError/ConfigError naming the missing or bad file and the fix.
[[nodiscard]] PretrainedStart bert_pretrained_start(const std::string& dir, const nlohmann::json& params);

/// Registers nothing: the "bert" family is built in (model_families() lists it).
[[nodiscard]] nlohmann::json bert_default_params();
/// The options a "bert" model spec's params mean (`vocab_size` null = `inputs_vocab`).
[[nodiscard]] BertOptions parse_bert_params(const nlohmann::json& params, int64_t inputs_vocab, int64_t num_classes);

}  // namespace kiln::nn
