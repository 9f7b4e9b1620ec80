// An optional capability of text preprocessors, for explanations: where each feature encode()
// counts lies in the text, and what a hidden word becomes. A preprocessor that has it also derives
// from TextFeatures; callers ask with dynamic_cast<const TextFeatures*>(&preprocessor).
// Thread-safe like encode().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::prep {

/// One occurrence of feature `feature` (a column of encode()'s bag) in a text: [begin, end) byte
/// offsets into the text as given (before lowercasing).
struct FeatureSpan {
  int64_t feature = 0;
  std::size_t begin = 0;
  std::size_t end = 0;
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
