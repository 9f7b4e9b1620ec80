#include "kiln/artifact/predictor.h"

#include <algorithm>

#include "kiln/core/error.h"

namespace kiln::artifact {
namespace {

// Examples encoded at a time: bounds the memory of one encode while letting the preprocessors
// parallelise across texts.
constexpr std::size_t kEncodeChunk = 4096;

data::Examples wrap_texts(const std::vector<std::string>& texts) {
  data::Examples e;
  e.texts = texts;
  return e;
}

}  // namespace

void validate(const PredictorOptions& o) {
  if (o.batch_size < 1) throw ConfigError("predictor.batch_size must be >= 1, got " + std::to_string(o.batch_size));
  if (o.device != "cpu" && o.device.rfind("cuda", 0) != 0) {
    throw ConfigError("predictor.device must be cpu or cuda[:N], got '" + o.device + "'");
  }
}

Predictor::Predictor(const std::string& artifact_dir, PredictorOptions options)
    : Predictor(load_artifact(artifact_dir), std::move(options)) {}

Predictor::Predictor(Artifact artifact, PredictorOptions options)
    : artifact_(std::move(artifact)), options_(std::move(options)) {
  validate(options_);
  const std::string where = artifact_.dir.empty() ? std::string("the artifact") : "artifact " + artifact_.dir;
  if (!options_.variant.empty()) {
    const auto it = artifact_.manifest.variants.find(options_.variant);
    if (it == artifact_.manifest.variants.end()) {
      std::string have;
      for (const auto& [name, v] : artifact_.manifest.variants) have += (have.empty() ? "" : ", ") + name;
      throw ConfigError("variant '" + options_.variant + "' is not in " + where + " (it has: " +
                        (have.empty() ? "none" : have) + "); make it with kiln optimize or drop --variant");
    }
    // No optimized kernels are known to this Kiln yet: every variant is refused by its first op.
    const std::string op = it->second.ops.empty() ? std::string("(none listed)") : it->second.ops.front();
    throw ArtifactError("variant '" + options_.variant + "' of " + where + " needs the op '" + op +
                        "', which this Kiln does not know; upgrade kiln or use the fp32 weights (no --variant)");
  }
  device_ = torch::Device(options_.device);
  if (device_.is_cuda() && !torch::cuda::is_available()) {
    throw ConfigError("device is '" + options_.device +
                      "' but this LibTorch has no CUDA (or no GPU is visible); use --device cpu or build against a "
                      "CUDA LibTorch via Torch_DIR");
  }
  artifact_.model->to(device_);
  artifact_.model->eval();
}

nn::Batch Predictor::encode(const data::Examples& examples) const {
  return prep::encode_all(artifact_.preprocessors, examples);
}

torch::Tensor Predictor::forward(const nn::Batch& batch, bool gradients) const {
  const nn::Batch on_device = device_.is_cpu() ? batch : batch.to(device_);
  if (gradients) return artifact_.model->forward(on_device);
  torch::InferenceMode guard;
  return artifact_.model->forward(on_device);
}

torch::Tensor Predictor::embed(const nn::Batch& batch) const {
  torch::InferenceMode guard;
  return artifact_.model->embed(device_.is_cpu() ? batch : batch.to(device_)).to(torch::kCPU);
}

torch::Tensor Predictor::predict_proba(const data::Examples& examples) const {
  const std::size_t n = examples.size();
  const double t = artifact_.manifest.temperature();
  if (n <= kEncodeChunk) return nn::predict_proba(*artifact_.model, encode(examples), options_.batch_size, device_, t);
  auto out = torch::empty({static_cast<int64_t>(n), static_cast<int64_t>(labels().size())}, torch::kFloat32);
  for (std::size_t start = 0; start < n; start += kEncodeChunk) {
    const std::size_t end = std::min(n, start + kEncodeChunk);
    std::vector<std::size_t> ids(end - start);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = start + i;
    out.narrow(0, static_cast<int64_t>(start), static_cast<int64_t>(end - start))
        .copy_(nn::predict_proba(*artifact_.model, encode(examples.select(ids)), options_.batch_size, device_, t));
  }
  return out;
}

torch::Tensor Predictor::predict_proba(const nn::Batch& batch) const {
  return nn::predict_proba(*artifact_.model, batch, options_.batch_size, device_, artifact_.manifest.temperature());
}

torch::Tensor Predictor::predict_proba(const std::vector<std::string>& texts) const {
  return predict_proba(wrap_texts(texts));
}

std::vector<Prediction> Predictor::predict(const data::Examples& examples, int top_k) const {
  if (top_k < 1) throw ConfigError("top_k must be >= 1, got " + std::to_string(top_k));
  const auto& labels = artifact_.manifest.labels;
  const int k = std::min<int>(top_k, static_cast<int>(labels.size()));
  auto probs = predict_proba(examples);
  auto [values, ids] = probs.topk(k, 1);
  const std::size_t n = examples.size();
  std::vector<Prediction> out(n);
  auto v = values.accessor<float, 2>();
  auto id = ids.accessor<int64_t, 2>();
  for (std::size_t i = 0; i < n; ++i) {
    auto& p = out[i];
    const auto row = static_cast<int64_t>(i);
    p.label_id = id[row][0];
    p.label = labels[static_cast<std::size_t>(p.label_id)];
    p.probability = v[row][0];
    for (int j = 0; j < k; ++j) p.top_k.emplace_back(labels[static_cast<std::size_t>(id[row][j])], v[row][j]);
  }
  return out;
}

std::vector<Prediction> Predictor::predict(const std::vector<std::string>& texts, int top_k) const {
  return predict(wrap_texts(texts), top_k);
}

}  // namespace kiln::artifact
