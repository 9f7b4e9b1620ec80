// Preprocessors turn examples into a Batch of named tensors: fit on training examples, encode
// batches, declare the tensors they produce (input_spec), and persist their fitted state as files
// in the artifact. A registry keyed by persisted type names ("tfidf", "hashed_ngrams", ...) builds
// and loads them; nothing else switches on a type name.
// Thread-safety: encode() and the other const members are safe from many threads once fitted.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/dataset.h"
#include "kiln/nn/batch.h"
#include "kiln/nn/input_spec.h"

namespace kiln::prep {

/// A preprocessor's fitted state: file role → file contents. The artifact stores each as its own
/// file and lists them in kiln.json; load_preprocessor gets the same map back.
using StateFiles = std::map<std::string, std::string>;

/// What encode_observed() saw of each example while encoding it (for drift).
struct EncodeObservations {
  /// Per example, the share of its terms outside the fitted vocabulary (what oov_rates() returns);
  /// empty when the preprocessor has no vocabulary.
  std::vector<double> oov_rates;
};

class Preprocessor {
 public:
  virtual ~Preprocessor() = default;
  /// Persisted type name (the registry key). Never renamed.
  [[nodiscard]] virtual std::string type() const = 0;
  /// Every option with its value (defaults filled in), without "type". Persisted in kiln.json.
  [[nodiscard]] virtual nlohmann::json options() const = 0;
  /// {"type": type(), ...options()}: what a run config's `featurizer` section holds.
  [[nodiscard]] nlohmann::json spec() const;
  /// Learns the fitted state (vocabulary, idf, ...) from training examples.
  virtual void fit(const data::Examples& examples) = 0;
  /// The examples' tensors, examples in input order. Requires fit() (or a loaded state). Throws
  /// DataError naming the modality the examples lack.
  [[nodiscard]] virtual nn::Batch encode(const data::Examples& examples) const = 0;
  /// fit(examples) and then encode(examples), the same tensors; a preprocessor that can encode its
  /// training examples from the fit's own analysis of them overrides it (TF-IDF: each text analyzed
  /// once instead of twice).
  [[nodiscard]] virtual nn::Batch fit_encode(const data::Examples& examples) {
    fit(examples);
    return encode(examples);
  }
  /// encode() that also fills `observed` from the same analysis of each example (nothing is
  /// analyzed twice): serving measures drift from it. Default: encode(), `observed` left empty.
  [[nodiscard]] virtual nn::Batch encode_observed(const data::Examples& examples, EncodeObservations& observed) const {
    observed = {};
    return encode(examples);
  }
  /// The tensors encode() produces.
  [[nodiscard]] virtual nn::InputSpec input_spec() const = 0;
  /// Human-readable name of feature j (a term, "bucket:N"); empty when features have no names.
  [[nodiscard]] virtual std::string feature_name(int64_t j) const { return {}; }
  /// The fitted state as files (role → contents); empty when there is none.
  [[nodiscard]] virtual StateFiles state_files() const = 0;
  /// Whether augment() changes batches (training-time augmentation is on). Default false.
  [[nodiscard]] virtual bool augments() const { return false; }
  /// Training-time augmentation of a batch this preprocessor encoded (random crops, flips, ...),
  /// drawn from LibTorch's global generator; the trainer applies it to each training step's batch,
  /// never at evaluation. The batch as it is by default.
  [[nodiscard]] virtual nn::Batch augment(const nn::Batch& batch) const { return batch; }
  /// Per text, the share of its terms outside the fitted vocabulary, analyzing the texts anew
  /// (encode_observed() reports the same numbers while encoding). nullopt when the preprocessor has
  /// no vocabulary (hashed features, images).
  [[nodiscard]] virtual std::optional<std::vector<double>> oov_rates(const std::vector<std::string>& texts) const {
    return std::nullopt;
  }
};

struct PreprocessorType {
  std::string name;
  std::string description;
  /// An unfitted preprocessor from a spec ({"type": name, ...options}); throws ConfigError naming
  /// the field (as "featurizer.<field>").
  std::function<std::unique_ptr<Preprocessor>(const nlohmann::json& spec)> make;
  /// A fitted one from its spec and state files; throws ArtifactError naming the problem.
  std::function<std::unique_ptr<Preprocessor>(const nlohmann::json& spec, const StateFiles& files)> load;
};

/// A model's preprocessors, one per modality, in kiln.json order. Shared: fitted preprocessors are
/// immutable, and a Predictor shares them with the artifact it was made from.
using Preprocessors = std::vector<std::shared_ptr<const Preprocessor>>;

/// Adds a type (replacing one of the same name). Thread-safe.
void register_preprocessor(PreprocessorType type);
/// Registered type names, sorted ("hashed_ngrams", "tfidf", ...).
[[nodiscard]] std::vector<std::string> preprocessor_types();
/// An unfitted preprocessor for `spec` ({"type": ..., ...options}). Throws ConfigError for an
/// unknown type (listing the known ones) or bad options.
[[nodiscard]] std::unique_ptr<Preprocessor> make_preprocessor(const nlohmann::json& spec);
/// A fitted preprocessor restored from its spec and state files. Throws ArtifactError.
[[nodiscard]] std::unique_ptr<Preprocessor> load_preprocessor(const nlohmann::json& spec, const StateFiles& files);

/// The tensors of several preprocessors together (a model may read one per modality). Throws
/// ConfigError when two produce the same tensor.
[[nodiscard]] nn::InputSpec combined_input_spec(const Preprocessors& preprocessors);
/// `batch` passed through every preprocessor's augment() (the trainer's per-step augmentation).
[[nodiscard]] nn::Batch augment_all(const Preprocessors& preprocessors, const nn::Batch& batch);
/// Whether any of the preprocessors augments().
[[nodiscard]] bool any_augments(const Preprocessors& preprocessors);
/// Encodes `examples` with every preprocessor into one Batch. `observed`, when given, gets the
/// first preprocessor's observations that are not empty (encode_observed()).
[[nodiscard]] nn::Batch encode_all(const Preprocessors& preprocessors,
                                   const data::Examples& examples, EncodeObservations* observed = nullptr);

}  // namespace kiln::prep
