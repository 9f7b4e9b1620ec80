// Featurizers turn texts into sparse feature rows: fit on training texts, transform batches, and
// save their fitted state into a model artifact. Thread-safety: transform() is const and safe from
// many threads once fitted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/text/csr.h"

namespace kiln::text {

class Featurizer {
 public:
  virtual ~Featurizer() = default;
  /// Persisted type name: "tfidf" or "hashed_ngrams". Never renamed.
  [[nodiscard]] virtual std::string type() const = 0;
  /// Learns the fitted state (vocabulary, idf) from training texts.
  virtual void fit(const std::vector<std::string>& texts) = 0;
  /// Rows in input order; columns in [0, dim()). Requires fit() (or a loaded state).
  [[nodiscard]] virtual CsrMatrix<float> transform(const std::vector<std::string>& texts) const = 0;
  /// Number of feature columns.
  [[nodiscard]] virtual int64_t dim() const = 0;
  /// Options, including "type" (written to kiln.json).
  [[nodiscard]] virtual nlohmann::json spec() const = 0;
  /// Fitted state (written to featurizer.json in the artifact).
  [[nodiscard]] virtual nlohmann::json state() const = 0;
  /// Human-readable name of column j (a term, or "bucket:N" for hashed features).
  [[nodiscard]] virtual std::string feature_name(int64_t j) const = 0;
};

/// An unfitted featurizer for `spec` ({"type": "tfidf" | "hashed_ngrams", ...options}).
/// Throws ConfigError naming the bad field.
[[nodiscard]] std::unique_ptr<Featurizer> make_featurizer(const nlohmann::json& spec);

/// A fitted featurizer restored from its spec and state. Throws ArtifactError naming the problem.
[[nodiscard]] std::unique_ptr<Featurizer> load_featurizer(const nlohmann::json& spec, const nlohmann::json& state);

}  // namespace kiln::text
