// The model base class and the registry of model families. Every model reads a Batch (named
// tensors) and returns logits; the trainer, the artifact, the Predictor and the server see only
// Model. Families are registered with the input tensors they need; the factory takes the
// preprocessors' input spec.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kiln/nn/batch.h"
#include "kiln/nn/input_spec.h"
#include "kiln/nn/model_spec.h"
#include "kiln/nn/module_kernel.h"

namespace kiln::nn {

/// The weights of a model that is a pooled bag embedding followed by one linear layer and nothing
/// else (no hidden layer, no dropout): logits = weight · pool(table[bag]) + bias. Trainers with a
/// dedicated kernel for this shape (the per-example SGD solver, fastText's recipe) update these
/// tensors in place.
struct BagLinearParts {
  torch::Tensor table;   ///< [features, dim] float32
  torch::Tensor weight;  ///< [classes, dim] float32
  torch::Tensor bias;    ///< [classes] float32
  /// kMean: each row's weights renormalised to sum to 1; kSqrtN: divided by sqrt(Σ w²).
  enum class Pooling { kSum, kMean, kSqrtN } pooling = Pooling::kMean;
};

/// The weights of a softmax regression over sparse features: logits = Σ w_j · table[i_j] + bias.
/// The L-BFGS solver (scikit-learn's LogisticRegression objective) updates them in place.
struct LinearParts {
  torch::Tensor table;  ///< [features, classes] float32
  torch::Tensor bias;   ///< [classes] float32
};

/// Base of every model family: forward(batch) = classify(embed(batch)).
/// Thread-safety: forward() under torch::InferenceMode is safe from many threads once the module
/// is in eval() mode and no longer trained.
class Model : public torch::nn::Module {
 public:
  /// Logits [batch, num_classes]: classify(embed(batch)). A batch of token windows (has_windows:
  /// input_ids [batch, window, sequence], the wordpiece preprocessor's long_text: window) runs each
  /// real window as its own sequence and returns, per example, the mean of its windows' logits.
  [[nodiscard]] torch::Tensor forward(const Batch& batch);
  /// embed() per example: for a batch of token windows, the mean of the example's windows' pooled
  /// vectors. What kiln embed and Predictor::embed return.
  [[nodiscard]] torch::Tensor embed_examples(const Batch& batch);
  /// The pooled representation the classification head reads, [batch, embedding_dim()]: the last
  /// hidden layer (mlp), the pooled bag (embedbag), the class scores before the bias (linear).
  [[nodiscard]] virtual torch::Tensor embed(const Batch& batch) = 0;
  /// Logits from embed()'s output.
  [[nodiscard]] virtual torch::Tensor classify(const torch::Tensor& pooled) = 0;
  [[nodiscard]] virtual int64_t embedding_dim() const = 0;
  [[nodiscard]] int64_t num_classes() const { return num_classes_; }
  /// The model's bag + linear weights when it has exactly that shape; std::nullopt otherwise (the
  /// default).
  [[nodiscard]] virtual std::optional<BagLinearParts> bag_linear_parts() { return std::nullopt; }
  /// The model's weights when it is a softmax regression over sparse features (family linear);
  /// std::nullopt otherwise (the default).
  [[nodiscard]] virtual std::optional<LinearParts> linear_parts() { return std::nullopt; }
  /// Whether the optimizer's weight decay skips parameter `name` (a named_parameters() key). The
  /// default decays every parameter; BERT exempts biases and LayerNorm weights, as Hugging Face's
  /// Trainer does.
  [[nodiscard]] virtual bool weight_decay_exempt(const std::string& name) const { return false; }
  /// Whether parameter `name`'s gradient is zero by construction (the trainer then does not warn
  /// that it vanishes). Default false; BERT's attention key biases (softmax ignores a shift shared
  /// by all keys).
  [[nodiscard]] virtual bool zero_gradient_by_design(const std::string& name) const { return false; }

  /// Makes every EmbeddingBag table in the model produce sparse row gradients (true) or dense ones
  /// (false, the default). With sparse gradients a backward pass costs O(rows the batch touches),
  /// not O(table); the trainer turns it on because its optimizers update such rows lazily.
  /// Replaces the forward pass of the module named `module` (a path of named_modules(), e.g.
  /// "hidden1" or "bert.encoder.layer.0.attention.self.query") with `kernel`; nullptr restores the
  /// fp32 module. Only modules the family routes through run_linear() can be replaced: throws
  /// ConfigError naming the module and the replaceable ones otherwise. Not thread-safe: install
  /// kernels before serving.
  void set_kernel(const std::string& module, std::shared_ptr<ModuleKernel> kernel);
  /// Removes every installed kernel (the model runs its fp32 modules again), in nested models too.
  void clear_kernels();
  /// Installed kernels by module name.
  [[nodiscard]] std::map<std::string, std::shared_ptr<ModuleKernel>> kernels() const;
  /// Names of the Linear modules the family routes through run_linear(), in named_modules() order:
  /// the layers an int8 variant may replace.
  [[nodiscard]] std::vector<std::string> replaceable_linears();
  /// Names of the Conv2d modules the family routes through run_conv_bn() (each followed by its
  /// BatchNorm), in named_modules() order: the convolutions a folded variant may replace.
  [[nodiscard]] std::vector<std::string> replaceable_convs();
  /// The BatchNorm that follows replaceable convolution `conv` (a name of replaceable_convs()).
  /// Throws ConfigError naming the module when it is not one.
  [[nodiscard]] torch::nn::BatchNorm2d batch_norm_after(const std::string& conv);

  void set_sparse_gradients(bool on) {
    for (const auto& m : modules(/*include_self=*/false)) {
      if (auto* bag = m->as<torch::nn::EmbeddingBag>()) bag->options.sparse(on);
    }
  }

 protected:
  explicit Model(int64_t num_classes) : num_classes_(num_classes) {}
  /// `layer`'s output for `x`: the installed kernel's when set_kernel() replaced it, else the fp32
  /// Linear. Families call this for every Linear an optimized variant may replace.
  [[nodiscard]] torch::Tensor run_linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
    if (!kernels_.empty()) {
      const auto it = kernels_.find(layer.get());
      if (it != kernels_.end()) return it->second.kernel->forward(x);
    }
    return layer.ptr()->forward(x);
  }
  /// relu?(bn(conv(x))) in eval mode: the installed kernel's (BN folded into the convolution, ReLU
  /// fused) when set_kernel() replaced `conv`, else the fp32 modules one by one.
  [[nodiscard]] torch::Tensor run_conv_bn(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn, bool relu,
                                          const torch::Tensor& x) {
    if (!kernels_.empty()) {
      const auto it = kernels_.find(conv.get());
      if (it != kernels_.end()) return relu ? it->second.kernel->forward_relu(x) : it->second.kernel->forward(x);
    }
    // A bf16 convolution before this one (a variant that replaces only some) hands over bfloat16,
    // an int8 one with a fused ReLU quint8.
    const auto& w = conv.ptr()->weight;
    const auto in = x.is_quantized() ? x.dequantize() : x;
    auto y = bn.ptr()->forward(conv.ptr()->forward(in.scalar_type() == w.scalar_type() ? in : in.to(w.scalar_type())));
    return relu ? torch::relu(y) : y;
  }
  /// Declares `conv` (followed by `bn`) replaceable; families call it once per pair they route
  /// through run_conv_bn.
  void mark_replaceable(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn) {
    replaceable_.insert(conv.get());
    bn_after_.insert_or_assign(conv.get(), bn);
  }
  /// True when some module of this model (not of a nested one) runs an installed kernel (families
  /// then skip fused fp32 paths).
  [[nodiscard]] bool has_kernels() const { return !kernels_.empty(); }
  /// Declares `layer` replaceable (families call it once per Linear they route through run_linear).
  void mark_replaceable(const torch::nn::Linear& layer) { replaceable_.insert(layer.get()); }

 private:
  /// The Models nested in this one (a multimodal model's image trunk and BERT text side), with the
  /// prefix of their names in named_modules(); only the outermost of nested ones. Their replaceable
  /// layers are this model's too, under "<prefix>.<name>", and set_kernel() hands them down.
  [[nodiscard]] std::vector<std::pair<std::string, Model*>> nested_models();
  struct Installed {
    std::string name;
    std::shared_ptr<ModuleKernel> kernel;
  };
  int64_t num_classes_;
  std::map<const torch::nn::Module*, Installed> kernels_;
  std::set<const torch::nn::Module*> replaceable_;
  std::map<const torch::nn::Module*, torch::nn::BatchNorm2d> bn_after_;
};

/// Builds a family's model for inputs `inputs` (already checked against the family's needs); throws
/// ConfigError naming the bad parameter.
using ModelFactory =
    std::function<std::shared_ptr<Model>(const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes)>;

/// What starting a family's model from a pretrained directory means (`kiln train --init DIR`).
struct PretrainedStart {
  /// The family params to build the model with: the caller's, with what the directory fixes
  /// (sizes, activation, ...) filled in.
  nlohmann::json params;
  /// Options the featurizer must take to read the directory's inputs (e.g. its vocabulary), merged
  /// over the run's featurizer spec; must name the featurizer "type".
  nlohmann::json featurizer;
  /// Copies the directory's weights into a model built from `params` (new heads stay as
  /// initialised); returns notes for the user (tensors missing, unused, re-initialised).
  std::function<std::vector<std::string>(Model& model)> load_weights;
};

struct ModelFamily {
  std::string name;
  std::string description;
  /// The input tensors the family reads; make_model refuses inputs lacking a required one.
  InputRequirements inputs;
  /// The family's parameters with their defaults (what `params: {}` means). Every parameter the
  /// family accepts has an entry: resolve_spec rejects keys that are not listed here.
  nlohmann::json default_params;
  ModelFactory factory;
  /// Optional: throws ConfigError for bad params without building a model (resolve_spec runs it).
  std::function<void(const nlohmann::json& params)> validate;
  /// Optional: reads a pretrained directory for `kiln train --init DIR` (`params`: the run's family
  /// params). Throws IoError/ConfigError/ArtifactError naming the file and the fix.
  std::function<PretrainedStart(const std::string& dir, const nlohmann::json& params)> pretrained;
};

/// Adds a family (replacing one of the same name; built-ins included). Thread-safe. Throws
/// ConfigError for an empty name or a missing factory.
void register_model_family(ModelFamily family);
/// Registered families, built-ins ("bert", "embedbag", "linear", "mlp") included, sorted by name.
[[nodiscard]] std::vector<ModelFamily> model_families();
/// Names of the registered families, sorted.
[[nodiscard]] std::vector<std::string> model_family_names();
/// Builds the model for `spec` reading `inputs`; throws ConfigError for an unknown family (listing
/// the known ones), inputs lacking a tensor the family needs, or bad parameters. Weights are
/// initialised as the spec's `init` says (seeded by torch::manual_seed).
[[nodiscard]] std::shared_ptr<Model> make_model(const ModelSpec& spec, const InputSpec& inputs, int64_t num_classes);
/// The spec with every default filled in (what gets persisted). Throws ConfigError like make_model
/// for an unknown family, unknown parameter keys, or (when the family has `validate`) bad values.
[[nodiscard]] ModelSpec resolve_spec(const ModelSpec& spec);

/// The family's PretrainedStart for directory `dir`; throws ConfigError when the family cannot
/// start from a pretrained directory (naming the families that can).
[[nodiscard]] PretrainedStart pretrained_start(const ModelSpec& spec, const std::string& dir);

/// The number of ids of the input tensor `name` (its vocab_size); throws ConfigError naming the
/// family when the tensor is missing or has none.
[[nodiscard]] int64_t input_vocab_size(const std::string& family, const InputSpec& inputs, const std::string& name);

/// Class probabilities [examples, classes] (float32, on the CPU) of `batch`: softmax(logits /
/// temperature), forwarded in chunks of `chunk` examples on `device` under InferenceMode. The one
/// forward + softmax the trainer's validation and the Predictor share. temperature 1 = the logits as
/// they are.
[[nodiscard]] torch::Tensor predict_proba(Model& model, const Batch& batch, int64_t chunk = 256,
                                          torch::Device device = torch::kCPU, double temperature = 1.0);

}  // namespace kiln::nn
