// What a model reads: the named tensors of a Batch, with dtypes and shapes whose dimensions may be
// symbolic ("batch", "nnz", "sequence"). Preprocessors declare the tensors they produce, model
// families the tensors they need; the registry checks that they match. Persisted in kiln.json
// "inputs": never rename a tensor, a dtype or a symbolic dimension.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::nn {

/// Tensor names of the built-in encodings (Hugging Face's names where they have one).
inline constexpr const char* kBagIndices = "bag_indices";      ///< int64 [nnz]: feature ids
inline constexpr const char* kBagOffsets = "bag_offsets";      ///< int64 [batch]: example b's features start here
inline constexpr const char* kBagWeights = "bag_weights";      ///< float32 [nnz]: feature values
inline constexpr const char* kInputIds = "input_ids";          ///< int64 [batch, sequence]
inline constexpr const char* kAttentionMask = "attention_mask";///< int64 [batch, sequence], 1 = token
inline constexpr const char* kTokenTypeIds = "token_type_ids"; ///< int64 [batch, sequence]
inline constexpr const char* kPixelValues = "pixel_values";    ///< float32 [batch, channels, height, width]
/// float32 [batch, sequence, hidden]: word embeddings given instead of looked up from input_ids
/// (Hugging Face's inputs_embeds; BERT). Never produced by a preprocessor: integrated gradients
/// set it to differentiate at the embedding layer. input_ids still give the shape and are checked.
inline constexpr const char* kInputsEmbeds = "inputs_embeds";

struct TensorSpec {
  std::string name;
  /// "int64" | "float32" | "int32" | "uint8" | "bool".
  std::string dtype;
  /// One entry per dimension: a symbolic name ("batch", "nnz", "sequence") or a fixed size in decimal.
  std::vector<std::string> shape;
  /// For tensors of ids (bag_indices, input_ids): values lie in [0, vocab_size). 0 otherwise.
  int64_t vocab_size = 0;
};

/// The tensors a preprocessor produces (or several preprocessors together), in order.
struct InputSpec {
  std::vector<TensorSpec> tensors;

  [[nodiscard]] const TensorSpec* find(const std::string& name) const;
  /// Appends `other`'s tensors; throws ConfigError naming a tensor both produce.
  void merge(const InputSpec& other);
  /// "bag_indices int64 [nnz] (vocab 5000), ..." for messages.
  [[nodiscard]] std::string describe() const;
};

[[nodiscard]] nlohmann::json to_json(const InputSpec& spec);
/// Throws ConfigError naming the entry and field (prefixed by `where`) when malformed.
[[nodiscard]] InputSpec input_spec_from_json(const nlohmann::json& j, const std::string& where);

/// What a model family reads: tensors it needs and tensors it uses when present.
struct InputRequirements {
  std::vector<std::string> required;
  std::vector<std::string> optional;
};

/// Throws ConfigError when `spec` lacks a required tensor, naming the family, the tensor, what the
/// inputs hold, and the fix (a preprocessor that produces it).
void check_inputs(const std::string& family, const InputRequirements& needs, const InputSpec& spec);

}  // namespace kiln::nn
