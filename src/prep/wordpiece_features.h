// The built-in "wordpiece" preprocessor type (wordpiece_features.cpp), added by the registry.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/prep/preprocessor.h"
#include "kiln/text/wordpiece.h"

namespace kiln::prep {

[[nodiscard]] PreprocessorType wordpiece_type();

/// The one place a WordPiece vocabulary is learnt for a run without one (featurizer.vocab unset,
/// no --init): vocab.txt contents of at most `size` tokens learnt on `texts` with `options`'
/// normalization. The trainer (`kiln vocab`, text module) is not merged yet: until it is, this
/// throws ConfigError telling the user to pass --vocab FILE or --init DIR.
[[nodiscard]] std::string train_wordpiece_vocabulary(const std::vector<std::string>& texts, std::int64_t size,
                                                     const text::WordPieceOptions& options);

}  // namespace kiln::prep
