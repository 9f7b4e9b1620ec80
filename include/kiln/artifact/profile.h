// The data profile of a training set, stored in kiln.json: the reference the server compares live
// traffic against for drift.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/text/featurizer.h"

namespace kiln::artifact {

/// Text-length histogram bin edges in code points (last bin is open-ended). Persisted: never change
/// without a format_version bump.
[[nodiscard]] const std::vector<int64_t>& length_bin_edges();

/// {"n": rows, "label_distribution": {label: share}, "text_length": {"edges": [...], "shares": [...],
///  "mean": m}, "top_features": [{"feature": name, "index": j, "doc_share": s}, ...] (by document
///  frequency, at most `top_k`), "nnz_per_row_mean": x}
[[nodiscard]] nlohmann::json compute_data_profile(const std::vector<std::string>& texts,
                                                  const std::vector<std::string>& labels,
                                                  const text::Featurizer& featurizer,
                                                  const text::CsrMatrix<float>& features, int top_k = 50);

}  // namespace kiln::artifact
