// Text classifiers over sparse bag-of-features input, and the registry that builds them from a
// ModelSpec. The trainer, the artifact and the Predictor only see TextClassifier.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/nn/model_spec.h"

namespace kiln::nn {

/// A batch of sparse rows in EmbeddingBag layout: row b's features are
/// indices[offsets[b] : offsets[b+1]] with weights at the same positions (weights undefined = 1).
struct SparseBatch {
  torch::Tensor indices;  ///< int64 [nnz], each in [0, input_dim)
  torch::Tensor offsets;  ///< int64 [batch], offsets[0] == 0, non-decreasing
  torch::Tensor weights;  ///< float32 [nnz] or undefined
  [[nodiscard]] SparseBatch to(torch::Device device) const;
};

/// Base of every model family. forward() returns logits [batch, num_classes].
/// Thread-safety: forward() under torch::InferenceMode is safe from many threads once the module
/// is in eval() mode and no longer trained.
class TextClassifier : public torch::nn::Module {
 public:
  [[nodiscard]] virtual torch::Tensor forward(const SparseBatch& batch) = 0;
  [[nodiscard]] int64_t input_dim() const { return input_dim_; }
  [[nodiscard]] int64_t num_classes() const { return num_classes_; }

  /// Makes every EmbeddingBag table in the model produce sparse row gradients (true) or dense ones
  /// (false, the default). With sparse gradients a backward pass costs O(rows the batch touches),
  /// not O(table); the trainer turns it on because its optimizers update such rows lazily.
  void set_sparse_gradients(bool on) {
    for (const auto& m : modules(/*include_self=*/false)) {
      if (auto* bag = m->as<torch::nn::EmbeddingBag>()) bag->options.sparse(on);
    }
  }

 protected:
  TextClassifier(int64_t input_dim, int64_t num_classes) : input_dim_(input_dim), num_classes_(num_classes) {}

 private:
  int64_t input_dim_;
  int64_t num_classes_;
};

/// Builds a family's model; throws ConfigError naming the bad parameter.
using ModelFactory = std::function<std::shared_ptr<TextClassifier>(const nlohmann::json& params, int64_t input_dim,
                                                                   int64_t num_classes)>;

struct ModelFamily {
  std::string name;
  std::string description;
  /// The family's parameters with their defaults (what `params: {}` means). Every parameter the
  /// family accepts has an entry: resolve_spec rejects keys that are not listed here.
  nlohmann::json default_params;
  ModelFactory factory;
  /// Optional: throws ConfigError for bad params without building a model (resolve_spec runs it).
  std::function<void(const nlohmann::json& params)> validate;
};

/// Adds a family (replacing one of the same name; built-ins included). Thread-safe. Throws
/// ConfigError for an empty name or a missing factory.
void register_model_family(ModelFamily family);
/// Registered families, built-ins ("linear", "mlp", "embedbag") included, sorted by name.
[[nodiscard]] std::vector<ModelFamily> model_families();
/// Builds the model for `spec`; throws ConfigError for an unknown family (listing the known ones)
/// or bad parameters. Weights are initialised as the spec's `init` says (seeded by torch::manual_seed).
[[nodiscard]] std::shared_ptr<TextClassifier> make_model(const ModelSpec& spec, int64_t input_dim, int64_t num_classes);
/// The spec with every default filled in (what gets persisted). Throws ConfigError like make_model
/// for an unknown family, unknown parameter keys, or (when the family has `validate`) bad values.
[[nodiscard]] ModelSpec resolve_spec(const ModelSpec& spec);

}  // namespace kiln::nn
