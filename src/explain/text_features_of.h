// The TextFeatures capability of a preprocessor, when it has one.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/prep/preprocessor.h"
#include "kiln/prep/text_features.h"

namespace kiln::explain {

inline std::optional<std::vector<prep::FeatureSpan>> feature_spans_of(const prep::Preprocessor& p, std::string_view text) {
  const auto* t = dynamic_cast<const prep::TextFeatures*>(&p);
  return t ? t->feature_spans(text) : std::nullopt;
}

inline std::string mask_token_of(const prep::Preprocessor& p) {
  const auto* t = dynamic_cast<const prep::TextFeatures*>(&p);
  return t ? t->mask_token() : std::string();
}

}  // namespace kiln::explain
