#include "kiln/artifact/predictor.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"

#include <cstring>
#include <filesystem>

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

torch::ScalarType scalar_type_of(core::DType d, const std::string& where) {
  switch (d) {
    case core::DType::kF32: return torch::kFloat32;
    case core::DType::kI8: return torch::kInt8;
    case core::DType::kU8: return torch::kUInt8;
    case core::DType::kI32: return torch::kInt32;
    case core::DType::kI64: return torch::kInt64;
    case core::DType::kBF16: return torch::kBFloat16;
    default: throw ArtifactError(where + ": dtype " + std::string(core::dtype_name(d)) + " is not used by any variant op");
  }
}

}  // namespace

void apply_variant(Artifact& artifact, const std::string& name, const Variant& variant) {
  const std::string where = artifact.dir.empty() ? std::string("the artifact") : "artifact " + artifact.dir;
  for (const auto& op : variant.ops) {
    if (!nn::find_variant_op(op)) {
      throw ArtifactError("variant '" + name + "' of " + where + " needs the op '" + op +
                          "', which this Kiln does not know; upgrade kiln or use the fp32 weights (--variant fp32)");
    }
  }
  if (variant.ops.empty()) {
    throw ArtifactError("variant '" + name + "' of " + where + " needs the op '(none listed)', which this Kiln does not "
                        "know; upgrade kiln or use the fp32 weights (--variant fp32)");
  }
  const auto modules = variant.details.value("modules", nlohmann::json::object());
  if (!modules.is_object() || modules.empty()) {
    throw ArtifactError("variant '" + name + "' of " + where + ": kiln.json lists no \"modules\" in its details; "
                        "the variant is corrupt: run kiln optimize again");
  }
  const std::filesystem::path file = std::filesystem::path(artifact.dir) / variant.file;
  if (variant.file.empty() || variant.file.find("..") != std::string::npos || !std::filesystem::exists(file)) {
    throw ArtifactError(file.string() + ": missing; kiln.json lists variant '" + name +
                        "' here: run kiln optimize again or use --variant fp32");
  }
  const auto st = core::SafetensorsFile::load(file);
  nn::VariantTensors tensors;
  for (const auto& t : st.names()) {
    const core::TensorView& v = st.get(t);
    auto copy = torch::empty(v.shape, torch::TensorOptions().dtype(scalar_type_of(v.dtype, file.string() + ": tensor '" + t + "'")));
    std::memcpy(copy.data_ptr(), v.data, v.nbytes);
    tensors[t] = copy;
  }
  apply_variant(*artifact.model, name, variant, tensors, file.string());
}

void apply_variant(nn::Model& model, const std::string& name, const Variant& variant,
                   const nn::VariantTensors& tensors, const std::string& source) {
  const auto modules = variant.details.value("modules", nlohmann::json::object());
  std::map<std::string, torch::nn::Module*> by_name;
  for (const auto& item : model.named_modules("", false)) by_name[item.key()] = item.value().get();
  for (const auto& [module, op_json] : modules.items()) {
    const std::string op = op_json.is_string() ? op_json.get<std::string>() : op_json.dump();
    const auto factory = nn::find_variant_op(op);
    if (!factory) {
      throw ArtifactError(source + ": variant '" + name + "' needs the op '" + op +
                          "', which this Kiln does not know; upgrade kiln or use the fp32 weights (--variant fp32)");
    }
    const auto m = by_name.find(module);
    if (m == by_name.end()) {
      throw ArtifactError(source + ": variant '" + name + "' replaces module '" + module +
                          "', which the model does not have; the variant belongs to another model: run kiln optimize again");
    }
    try {
      model.set_kernel(module, factory(module, *m->second, tensors));
    } catch (const ConfigError& e) {
      throw ArtifactError(source + ": " + e.what());
    } catch (const ArtifactError& e) {
      throw ArtifactError(source + ": " + e.what());
    }
  }
}

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
  std::string chosen = options_.variant.empty() ? artifact_.manifest.default_variant : options_.variant;
  if (chosen == "fp32") chosen.clear();
  if (!chosen.empty()) {
    const auto it = artifact_.manifest.variants.find(chosen);
    if (it == artifact_.manifest.variants.end()) {
      std::string have;
      for (const auto& [name, v] : artifact_.manifest.variants) have += (have.empty() ? "" : ", ") + name;
      throw ConfigError("variant '" + chosen + "' is not in " + where + " (it has: " +
                        (have.empty() ? std::string("none") : have) + "); make it with kiln optimize or drop --variant");
    }
    if (options_.device != "cpu") {
      throw ConfigError("variant '" + chosen + "' of " + where + " runs on the CPU only; use --device cpu or --variant fp32");
    }
    apply_variant(artifact_, chosen, it->second);
  }
  variant_ = chosen.empty() ? std::string("fp32") : chosen;
  device_ = torch::Device(options_.device);
  if (device_.is_cuda() && !torch::cuda::is_available()) {
    throw ConfigError("device is '" + options_.device +
                      "' but this LibTorch has no CUDA (or no GPU is visible); use --device cpu or build against a "
                      "CUDA LibTorch via Torch_DIR");
  }
  artifact_.model->to(device_);
  artifact_.model->eval();
}

nn::Batch Predictor::encode(const data::Examples& examples, prep::EncodeObservations* observed) const {
  return prep::encode_all(artifact_.preprocessors, examples, observed);
}

torch::Tensor Predictor::forward(const nn::Batch& batch, bool gradients) const {
  const nn::Batch on_device = device_.is_cpu() ? batch : batch.to(device_);
  if (gradients) return artifact_.model->forward(on_device);
  torch::InferenceMode guard;
  return artifact_.model->forward(on_device);
}

torch::Tensor Predictor::embed(const nn::Batch& batch) const {
  torch::InferenceMode guard;
  return artifact_.model->embed_examples(device_.is_cpu() ? batch : batch.to(device_)).to(torch::kCPU);
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
  return top_predictions(predict_proba(examples), top_k);
}

std::vector<Prediction> Predictor::predict(const nn::Batch& batch, int top_k) const {
  if (top_k < 1) throw ConfigError("top_k must be >= 1, got " + std::to_string(top_k));
  return top_predictions(predict_proba(batch), top_k);
}

std::vector<Prediction> Predictor::top_predictions(const torch::Tensor& probs, int top_k) const {
  const auto& labels = artifact_.manifest.labels;
  const int k = std::min<int>(top_k, static_cast<int>(labels.size()));
  auto [values, ids] = probs.topk(k, 1);
  const auto n = static_cast<std::size_t>(probs.size(0));
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
