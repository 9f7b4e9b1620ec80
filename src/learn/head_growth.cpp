#include "kiln/learn/head_growth.h"

#include <torch/torch.h>

#include <set>

#include "kiln/core/error.h"

namespace kiln::learn {
namespace {

// Copies `from` into `to` where the shapes agree, and into the leading slice of the one dimension
// where `to` is larger (the class dimension).
void copy_grown(const std::string& name, const torch::Tensor& from, torch::Tensor to, int64_t old_classes,
                int64_t new_classes) {
  const auto src = from.to(torch::kCPU);
  if (src.sizes() == to.sizes()) {
    to.copy_(src);
    return;
  }
  if (src.dim() != to.dim()) {
    throw ArtifactError("growing the head: tensor '" + name + "' changed rank; this family cannot grow its classes");
  }
  int64_t grown = -1;
  for (int64_t d = 0; d < src.dim(); ++d) {
    if (src.size(d) == to.size(d)) continue;
    if (grown >= 0 || src.size(d) != old_classes || to.size(d) != new_classes) {
      throw ArtifactError("growing the head: tensor '" + name + "' changes in more than its class dimension; this "
                          "family cannot grow its classes: train a new model with kiln train");
    }
    grown = d;
  }
  to.narrow(grown, 0, old_classes).copy_(src);
}

}  // namespace

artifact::Artifact copy_artifact(const artifact::Artifact& a) {
  if (!a.model) throw ArtifactError("copying an artifact: it has no model");
  artifact::Artifact out;
  out.manifest = a.manifest;
  out.preprocessors = a.preprocessors;
  out.dir = a.dir;
  out.model = nn::make_model(a.manifest.model, a.manifest.inputs, static_cast<int64_t>(a.manifest.labels.size()));
  torch::NoGradGuard no_grad;
  auto from = a.model->named_parameters();
  for (auto& p : out.model->named_parameters()) p.value().copy_(from[p.key()].to(torch::kCPU));
  auto from_buffers = a.model->named_buffers();
  for (auto& b : out.model->named_buffers()) b.value().copy_(from_buffers[b.key()].to(torch::kCPU));
  out.model->eval();
  return out;
}

artifact::Artifact grow_labels(const artifact::Artifact& a, const std::vector<std::string>& new_labels, uint64_t seed) {
  if (!a.model) throw ArtifactError("growing the head: the artifact has no model");
  std::set<std::string> known(a.manifest.labels.begin(), a.manifest.labels.end());
  for (const auto& l : new_labels) {
    if (l.empty()) throw ConfigError("growing the head: a new label is empty");
    if (!known.insert(l).second) {
      throw ConfigError("growing the head: label '" + l + "' is already one of the model's labels (or listed twice)");
    }
  }
  const auto old_classes = static_cast<int64_t>(a.manifest.labels.size());
  artifact::Artifact out;
  out.manifest = a.manifest;
  out.manifest.labels.insert(out.manifest.labels.end(), new_labels.begin(), new_labels.end());
  const auto new_classes = static_cast<int64_t>(out.manifest.labels.size());
  out.preprocessors = a.preprocessors;
  out.dir = a.dir;
  // Optimized variants hold the old head's shape: the grown artifact runs fp32 weights.
  out.manifest.variants.clear();
  out.manifest.default_variant.clear();
  torch::manual_seed(seed);
  out.model = nn::make_model(a.manifest.model, a.manifest.inputs, new_classes);
  torch::NoGradGuard no_grad;
  auto from = a.model->named_parameters();
  for (auto& p : out.model->named_parameters()) {
    if (!from.contains(p.key())) throw ArtifactError("growing the head: the parent has no tensor '" + p.key() + "'");
    copy_grown(p.key(), from[p.key()], p.value(), old_classes, new_classes);
  }
  auto from_buffers = a.model->named_buffers();
  for (auto& b : out.model->named_buffers()) {
    if (from_buffers.contains(b.key())) copy_grown(b.key(), from_buffers[b.key()], b.value(), old_classes, new_classes);
  }
  out.model->eval();
  return out;
}

}  // namespace kiln::learn
