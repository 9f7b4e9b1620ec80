// The `POST /v1/predict` answer body: per text the top label, its probability and the top-k.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace kiln::serve {

/// {"predictions": [{"label", "probability", "top_k": [{"label", "probability"}...]}...],
///  "model_version"}. `probabilities`: row-major [n, labels.size()]; `k` <= labels.size().
/// Ties rank the lower class index first.
[[nodiscard]] std::string predict_response(const std::vector<std::string>& labels, const std::string& model_version,
                                           const std::vector<float>& probabilities, std::size_t n, std::size_t k);
/// The same body from labels and version already JSON-encoded (quoted and escaped, as
/// ServedModel::labels_json() keeps them): nothing is escaped per request.
[[nodiscard]] std::string predict_response_json(const std::vector<std::string>& labels_json, const std::string& version_json,
                                                const std::vector<float>& probabilities, std::size_t n, std::size_t k);

}  // namespace kiln::serve
