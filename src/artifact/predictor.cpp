#include "kiln/artifact/predictor.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/core/parallel.h"

namespace kiln::artifact {

Predictor::Predictor(const std::string& artifact_dir, PredictorOptions options)
    : Predictor(load_artifact(artifact_dir), options) {}

Predictor::Predictor(Artifact artifact, PredictorOptions options)
    : artifact_(std::move(artifact)), options_(options) {
  if (options_.batch_size < 1) {
    throw ConfigError("predictor.batch_size must be >= 1, got " + std::to_string(options_.batch_size));
  }
  artifact_.model->eval();
}

torch::Tensor Predictor::predict_proba(const std::vector<std::string>& texts) const {
  const int64_t classes = static_cast<int64_t>(artifact_.manifest.labels.size());
  auto out = torch::empty({static_cast<int64_t>(texts.size()), classes}, torch::kFloat32);
  torch::InferenceMode guard;
  for (std::size_t start = 0; start < texts.size(); start += static_cast<std::size_t>(options_.batch_size)) {
    const std::size_t end = std::min(texts.size(), start + static_cast<std::size_t>(options_.batch_size));
    std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                   texts.begin() + static_cast<std::ptrdiff_t>(end));
    auto x = artifact_.featurizer->transform(chunk);
    const int64_t rows = static_cast<int64_t>(end - start);
    auto indptr = x.indptr;
    nn::SparseBatch batch;
    const int64_t nnz = static_cast<int64_t>(x.indices.size());
    batch.indices = torch::empty({nnz}, torch::kInt64);
    batch.weights = torch::from_blob(x.data.data(), {nnz}, torch::kFloat32).clone();
    batch.offsets = torch::empty({rows}, torch::kInt64);
    auto* ip = batch.indices.data_ptr<int64_t>();
    for (int64_t k = 0; k < nnz; ++k) ip[k] = static_cast<int64_t>(x.indices[static_cast<std::size_t>(k)]);
    auto* op = batch.offsets.data_ptr<int64_t>();
    for (int64_t r = 0; r < rows; ++r) op[r] = static_cast<int64_t>(indptr[static_cast<std::size_t>(r)]);
    auto logits = artifact_.model->forward(batch);
    out.narrow(0, static_cast<int64_t>(start), rows).copy_(torch::softmax(logits, 1));
  }
  return out;
}

std::vector<Prediction> Predictor::predict(const std::vector<std::string>& texts, int top_k) const {
  if (top_k < 1) throw ConfigError("top_k must be >= 1, got " + std::to_string(top_k));
  const auto& labels = artifact_.manifest.labels;
  const int k = std::min<int>(top_k, static_cast<int>(labels.size()));
  auto probs = predict_proba(texts);
  auto [values, ids] = probs.topk(k, 1);
  std::vector<Prediction> out(texts.size());
  auto v = values.accessor<float, 2>();
  auto id = ids.accessor<int64_t, 2>();
  for (std::size_t i = 0; i < texts.size(); ++i) {
    auto& p = out[i];
    p.label_id = id[static_cast<int64_t>(i)][0];
    p.label = labels[static_cast<std::size_t>(p.label_id)];
    p.probability = v[static_cast<int64_t>(i)][0];
    for (int j = 0; j < k; ++j) {
      p.top_k.emplace_back(labels[static_cast<std::size_t>(id[static_cast<int64_t>(i)][j])], v[static_cast<int64_t>(i)][j]);
    }
  }
  return out;
}

}  // namespace kiln::artifact
