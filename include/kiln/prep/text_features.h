// An optional capability of text preprocessors, for explanations: where each feature encode()
// counts lies in the text, and what a hidden word becomes. A preprocessor that has it also derives
// from TextFeatures; callers ask with dynamic_cast<const TextFeatures*>(&preprocessor).
// Thread-safe like encode().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/nn/batch.h"

namespace kiln::prep {

/// One occurrence of feature `feature` (a column of encode()'s bag) in a text: [begin, end) byte
/// offsets into the text as given (before lowercasing).
struct FeatureSpan {
  int64_t feature = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
};

/// What encode() makes of one text with some of its words dropped, computed from the words kept
/// rather than by rendering and re-analysing each masked text (Kernel SHAP over a bag model's
/// words evaluates thousands of such texts per explanation). Made by
/// TextFeatures::word_mask_encoder for one text; not thread-safe (it caches term lookups).
class WordMaskEncoder {
 public:
  virtual ~WordMaskEncoder() = default;
  /// The Batch encode() returns for `rows` texts: row r is the text with word k dropped wherever
  /// masks[r * words + k] is false (words as given to word_mask_encoder, dropped as an empty
  /// mask token drops them: the word's bytes removed, the text around it kept). Identical tensors.
  [[nodiscard]] virtual nn::Batch encode(const bool* masks, std::int64_t rows) = 0;
};

class TextFeatures {
 public:
  virtual ~TextFeatures() = default;
  /// Every occurrence in `text` of a feature encode() counts (a vocabulary term, a hashed bucket,
  /// a word's character n-gram), in the analyzer's order; a word n-gram spans its words.
  /// std::nullopt when the features cannot be placed (character analyzers).
  [[nodiscard]] virtual std::optional<std::vector<FeatureSpan>> feature_spans(std::string_view text) const = 0;
  /// What a masked word becomes when an explanation hides it: the mask token written in the text
  /// ("[MASK]" for WordPiece); empty = the word is dropped (bag models).
  [[nodiscard]] virtual std::string mask_token() const { return {}; }
  /// For a preprocessor whose mask_token() is empty: an encoder of `text` with any subset of
  /// `words` dropped, `words` being [begin, end) byte offsets of maximal runs of word characters
  /// (Python `\w+`) in `text`, in order. nullptr (the default) when the preprocessor cannot
  /// guarantee the same features as encode() of the masked text for this text: callers render
  /// and encode the masked texts instead.
  [[nodiscard]] virtual std::unique_ptr<WordMaskEncoder> word_mask_encoder(
      std::string_view /*text*/, const std::vector<std::pair<std::size_t, std::size_t>>& /*words*/) const {
    return nullptr;
  }
  /// Token-sequence preprocessors (WordPiece, one window): for each position of the input_ids row
  /// encode() makes of `text`, the token's [start, end) offsets in code points of `text`; [0, 0]
  /// for special tokens ([CLS], [SEP]). std::nullopt when encode() does not make one token row
  /// per text (bag preprocessors, long_text: window): the default.
  [[nodiscard]] virtual std::optional<std::vector<std::pair<std::int64_t, std::int64_t>>> token_offsets(
      std::string_view /*text*/) const {
    return std::nullopt;
  }
};

}  // namespace kiln::prep
