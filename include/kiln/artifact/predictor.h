// Predictor: loads an artifact once and serves many threads; the only inference path. predict,
// evaluate, serve, the trainer's final metrics, explain and optimize all encode and forward through
// it. Thread-safe after construction.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "kiln/artifact/artifact.h"
#include "kiln/data/dataset.h"
#include "kiln/nn/batch.h"

namespace kiln::artifact {

struct Prediction {
  int64_t label_id = 0;
  std::string label;
  float probability = 0;
  /// The k most probable (label, probability), descending; k = the top_k asked for.
  std::vector<std::pair<std::string, float>> top_k;
};

struct PredictorOptions {
  /// Examples per forward pass. Default 256.
  int64_t batch_size = 256;
  /// "cpu" or "cuda[:N]" (a CUDA LibTorch with a visible GPU). Default "cpu".
  std::string device = "cpu";
  /// Run an optimized variant of the weights (kiln.json "variants"); "fp32" = the fp32 weights;
  /// empty = the artifact's default_variant (kiln optimize sets it), else fp32. Default empty.
  std::string variant;
};

/// Throws ConfigError naming the field and the value.
void validate(const PredictorOptions& options);

/// Installs variant `name` (an entry of artifact.manifest.variants) into artifact.model: reads
/// variants/<name>.safetensors and builds each listed module's kernel. Throws ArtifactError for an op
/// this Kiln does not know, a missing or corrupt file, or a module the model lacks.
void apply_variant(Artifact& artifact, const std::string& name, const Variant& variant);
/// The same with the variant's tensors already in memory (kiln optimize's accuracy gate); `source`
/// names them in messages.
void apply_variant(nn::Model& model, const std::string& name, const Variant& variant,
                   const nn::VariantTensors& tensors, const std::string& source);

class Predictor {
 public:
  explicit Predictor(const std::string& artifact_dir, PredictorOptions options = {});
  explicit Predictor(Artifact artifact, PredictorOptions options = {});

  /// The examples' tensors, on the CPU (every preprocessor's). `observed`, when given, gets what
  /// the preprocessors saw while encoding (prep::encode_all).
  [[nodiscard]] nn::Batch encode(const data::Examples& examples, prep::EncodeObservations* observed = nullptr) const;
  /// Logits [examples, classes] on the predictor's device, before calibration (probabilities are
  /// softmax(logits / manifest().temperature())). Under InferenceMode unless `gradients`:
  /// then autograd records the pass, so gradients reach the model's parameters and any input
  /// tensor of `batch` that requires them (integrated gradients, saliency).
  [[nodiscard]] torch::Tensor forward(const nn::Batch& batch, bool gradients = false) const;
  /// The model's pooled representation [examples, embedding_dim] (InferenceMode), on the CPU.
  [[nodiscard]] torch::Tensor embed(const nn::Batch& batch) const;

  /// Class probabilities [examples, classes], float32 on the CPU, rows in input order.
  [[nodiscard]] torch::Tensor predict_proba(const data::Examples& examples) const;
  [[nodiscard]] torch::Tensor predict_proba(const std::vector<std::string>& texts) const;
  /// Class probabilities of encoded examples (forwarded in chunks of batch_size).
  [[nodiscard]] torch::Tensor predict_proba(const nn::Batch& batch) const;
  /// Top label and the top_k (>= 1, clamped to the number of classes) for each example.
  [[nodiscard]] std::vector<Prediction> predict(const data::Examples& examples, int top_k = 1) const;
  [[nodiscard]] std::vector<Prediction> predict(const std::vector<std::string>& texts, int top_k = 1) const;
  /// The same for encoded examples (encode(), or a cache of its results).
  [[nodiscard]] std::vector<Prediction> predict(const nn::Batch& batch, int top_k = 1) const;

  [[nodiscard]] const Manifest& manifest() const { return artifact_.manifest; }
  [[nodiscard]] const std::vector<std::string>& labels() const { return artifact_.manifest.labels; }
  [[nodiscard]] const prep::Preprocessors& preprocessors() const {
    return artifact_.preprocessors;
  }
  /// The model (eval() mode, on device()). Shared: do not train it while the Predictor serves.
  [[nodiscard]] const std::shared_ptr<nn::Model>& model() const { return artifact_.model; }
  [[nodiscard]] torch::Device device() const { return device_; }
  /// The variant this predictor runs: "fp32" or a name of manifest().variants.
  [[nodiscard]] const std::string& variant() const { return variant_; }
  /// The artifact directory ("" for an artifact built in memory).
  [[nodiscard]] const std::string& dir() const { return artifact_.dir; }

 private:
  /// Top label and top_k of each row of probabilities [examples, classes].
  [[nodiscard]] std::vector<Prediction> top_predictions(const torch::Tensor& probs, int top_k) const;

  Artifact artifact_;
  PredictorOptions options_;
  std::string variant_ = "fp32";
  torch::Device device_ = torch::kCPU;
};

}  // namespace kiln::artifact
