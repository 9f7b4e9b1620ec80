// Private: TF-IDF features of a text with words dropped, from the words kept (TextFeatures::
// word_mask_encoder for the tfidf preprocessor).
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/prep/text_features.h"
#include "kiln/text/tfidf.h"

namespace kiln::prep {

/// The encoder of `text` for a fitted vocabulary-mode word-analyzer vectorizer, or nullptr where
/// dropping a word could change more than that word's own tokens: the character analyzers,
/// hashing mode, n-grams longer than 4 words, more than 65535 distinct tokens, and (with
/// lowercase) a capital sigma (Python's final-sigma rule looks past the word) or a character whose
/// lowercase changes whether it is a word character. Otherwise the masked text's tokens are the
/// kept words' tokens in order (each word is a maximal run of word characters: dropping it joins
/// two non-word gaps, which never join two words), and its terms are the n-grams over that
/// sequence, across the gaps, as the analyzer forms them. `vectorizer` must outlive the encoder.
[[nodiscard]] std::unique_ptr<WordMaskEncoder> tfidf_word_mask_encoder(
    const text::TfidfVectorizer& vectorizer, std::string_view text,
    const std::vector<std::pair<std::size_t, std::size_t>>& words);

}  // namespace kiln::prep
