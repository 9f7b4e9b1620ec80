// The TextFeatures capability of a preprocessor, when it has one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/explain/explanation.h"
#include "kiln/prep/preprocessor.h"
#include "kiln/prep/text_features.h"

namespace kiln::explain {

inline std::optional<std::vector<prep::FeatureSpan>> feature_spans_of(const prep::Preprocessor& p, std::string_view text) {
  const auto* t = dynamic_cast<const prep::TextFeatures*>(&p);
  return t ? t->feature_spans(text) : std::nullopt;
}

/// Every span of each feature in `text` ([start, end) code points), by feature; empty without a
/// text or without TextFeatures.
inline std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> spans_by_feature(const prep::Preprocessor& p,
                                                                                   const std::string* text) {
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> spans;
  if (text == nullptr) return spans;
  if (const auto fs = feature_spans_of(p, *text)) {
    for (const auto& s : *fs) spans[s.feature].emplace_back(code_point_offset(*text, s.begin), code_point_offset(*text, s.end));
  }
  return spans;
}

/// Feature j's attribution entry, value 0: its name ("feature:J" when it has none) and its spans.
inline Attribution feature_attribution(const prep::Preprocessor& p, int64_t j,
                                       const std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>>& spans) {
  Attribution a;
  a.feature = p.feature_name(j);
  if (a.feature.empty()) a.feature = "feature:" + std::to_string(j);
  const auto it = spans.find(j);
  if (it != spans.end()) a.spans = it->second;
  return a;
}

inline std::string mask_token_of(const prep::Preprocessor& p) {
  const auto* t = dynamic_cast<const prep::TextFeatures*>(&p);
  return t ? t->mask_token() : std::string();
}

}  // namespace kiln::explain
