// The data profile of a training set, stored in kiln.json: the reference the server compares live
// traffic against for drift.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/dataset.h"
#include "kiln/data/image.h"
#include "kiln/nn/batch.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::artifact {

/// Text-length histogram bin edges in code points (last bin is open-ended). Persisted: never change
/// without a format_version bump.
[[nodiscard]] const std::vector<int64_t>& length_bin_edges();

/// Image statistics' histogram edges (last bin open-ended): mean gray intensity (0-255) and size in
/// pixels (width x height). Persisted: never change without a format_version bump.
[[nodiscard]] const std::vector<double>& intensity_bin_edges();
[[nodiscard]] const std::vector<double>& image_size_bin_edges();

/// Mean gray intensity (BT.601 luma, alpha over white, 0-255) of decoded `image`.
[[nodiscard]] double mean_intensity(const data::Image& image);

/// {"n": rows, "label_distribution": {label: share}, "text_length": {"edges": [...], "shares": [...],
///  "mean": m}, "top_features": [{"feature": name, "index": j, "doc_share": s}, ...] (by document
///  frequency, at most `top_k`), "nnz_per_row_mean": x}
/// For a training set and its encoding by `features` (the first preprocessor). Text lengths only
/// when the examples have text; top features and nnz only for bag-of-features encodings. With
/// images: "image_intensity" and "image_size" {"edges", "shares", "mean"} over the training images
/// (each decoded once more; an unreadable one is left out).
[[nodiscard]] nlohmann::json compute_data_profile(const data::Dataset& train, const prep::Preprocessor& features,
                                                  const nn::Batch& encoded, int top_k = 50);

}  // namespace kiln::artifact
