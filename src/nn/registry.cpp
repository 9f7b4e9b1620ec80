// The model-family registry. Built-in families are added once, on the first call into the registry,
// so that linking kiln_nn from a static library never loses them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "builtin_families.h"
#include "kiln/core/error.h"
#include "kiln/nn/ensemble.h"
#include "kiln/nn/model.h"
#include "params.h"

namespace kiln::nn {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, ModelFamily> families;  ///< guarded by mutex
};

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry();  // never destroyed: factories may be used during static destruction
    for (auto family : {linear_family(), mlp_family(), embedbag_family(), bert_family(), cnn_family(),
                        multimodal_family(), ensemble_family()}) {
      r->families.emplace(family.name, std::move(family));
    }
    return r;
  }();
  return *instance;
}

ModelFamily find_family(const std::string& name) {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.families.find(name);
  if (it != r.families.end()) return it->second;
  std::vector<std::string> known;
  for (const auto& entry : r.families) known.push_back(entry.first);
  std::string msg = "model.family \"" + name + "\" is not a known model family; known families: " +
                    join_names(known, false);
  const std::string hint = closest_name(name, known);
  if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
  throw ConfigError(msg);
}

}  // namespace

void register_model_family(ModelFamily family) {
  if (family.name.empty()) throw ConfigError("register_model_family: family name must not be empty");
  if (!family.factory) {
    throw ConfigError("register_model_family: family \"" + family.name + "\" has no factory");
  }
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.families[family.name] = std::move(family);
}

std::vector<ModelFamily> model_families() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<ModelFamily> out;
  out.reserve(r.families.size());
  for (const auto& entry : r.families) out.push_back(entry.second);
  return out;
}

namespace {

ModelSpec resolve_with(const ModelFamily& family, const ModelSpec& spec) {
  check_known_keys(family.name, spec.params, family.default_params);
  if (family.validate) family.validate(spec.params);
  ModelSpec out;
  out.family = family.name;
  out.params = merge_params(family.default_params, spec.params);
  return out;
}

}  // namespace

ModelSpec resolve_spec(const ModelSpec& spec) { return resolve_with(find_family(spec.family), spec); }

std::vector<std::string> model_family_names() {
  std::vector<std::string> out;
  for (const auto& f : model_families()) out.push_back(f.name);
  return out;
}

std::shared_ptr<Model> make_model(const ModelSpec& spec, const InputSpec& inputs, int64_t num_classes) {
  const ModelFamily family = find_family(spec.family);
  const ModelSpec resolved = resolve_with(family, spec);
  check_inputs(family.name, family.inputs, inputs);
  if (num_classes < 1) throw ConfigError("model num_classes must be >= 1, got " + std::to_string(num_classes));
  std::shared_ptr<Model> model;
  try {
    model = family.factory(resolved.params, inputs, num_classes);
  } catch (const c10::Error& e) {
    throw Error("building model family \"" + family.name + "\" (inputs " + inputs.describe() + ", num_classes " +
                std::to_string(num_classes) + ") failed: " + e.what_without_backtrace());
  }
  if (!model) throw Error("model family \"" + family.name + "\" factory returned no model");
  return model;
}

PretrainedStart pretrained_start(const ModelSpec& spec, const std::string& dir) {
  const ModelFamily family = find_family(spec.family);
  if (!family.pretrained) {
    std::vector<std::string> able;
    for (const auto& f : model_families()) {
      if (f.pretrained) able.push_back(f.name);
    }
    throw ConfigError("--init " + dir + ": model family \"" + family.name +
                      "\" cannot start from a pretrained directory; families that can: " + join_names(able, false));
  }
  check_known_keys(family.name, spec.params, family.default_params);
  return family.pretrained(dir, spec.params);
}

int64_t input_vocab_size(const std::string& family, const InputSpec& inputs, const std::string& name) {
  const TensorSpec* t = inputs.find(name);
  if (!t || t->vocab_size < 1) {
    throw ConfigError("model family '" + family + "' needs the number of ids of input '" + name +
                      "' but the inputs (" + inputs.describe() + ") do not give it");
  }
  return t->vocab_size;
}

namespace {

// Softmax regression over bags of features on the CPU (the linear family; what a served one-text
// request runs): per row the bias, the weighted sum of the table's rows, the temperature and the
// softmax in one pass, with no LibTorch op per step (at one text per request their dispatch and
// allocations cost more than the arithmetic). Returns false, leaving the general path to run (and
// to report bad input), when the model or the batch is not of that shape.
bool linear_proba(Model& model, const Batch& batch, double temperature, torch::Tensor& out) {
  const auto parts = model.linear_parts();
  if (!parts) return false;
  const torch::Tensor& table = parts->table;
  const torch::Tensor& bias = parts->bias;
  const auto is_cpu_float = [](const torch::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32 && t.is_contiguous();
  };
  if (!is_cpu_float(table) || !is_cpu_float(bias) || table.dim() != 2 || bias.numel() != table.size(1)) return false;
  const auto indices = batch.get(kBagIndices), offsets = batch.get(kBagOffsets), weights = batch.get(kBagWeights);
  const auto is_cpu_long = [](const torch::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kInt64 && t.is_contiguous() && t.dim() == 1;
  };
  if (!is_cpu_long(indices) || !is_cpu_long(offsets) || offsets.numel() != batch.size()) return false;
  if (weights.defined() && (!is_cpu_float(weights) || weights.numel() != indices.numel())) return false;
  const int64_t rows = batch.size(), classes = table.size(1), features = table.size(0), n = indices.numel();
  const int64_t* idx = indices.data_ptr<int64_t>();
  const int64_t* off = offsets.data_ptr<int64_t>();
  for (int64_t j = 0; j < n; ++j) {
    if (idx[j] < 0 || idx[j] >= features) return false;
  }
  for (int64_t b = 0; b < rows; ++b) {
    if (off[b] < 0 || off[b] > n || (b > 0 && off[b] < off[b - 1])) return false;
  }
  const float* w = weights.defined() ? weights.data_ptr<float>() : nullptr;
  const float* t = table.data_ptr<float>();
  const float* bi = bias.data_ptr<float>();
  out = torch::empty({rows, classes}, torch::kFloat32);
  float* o = out.data_ptr<float>();
  const auto temp = static_cast<float>(temperature);
  for (int64_t b = 0; b < rows; ++b) {
    float* row = o + b * classes;
    std::fill(row, row + classes, 0.0f);
    const int64_t end = b + 1 < rows ? off[b + 1] : n;
    for (int64_t j = off[b]; j < end; ++j) {
      const float x = w ? w[j] : 1.0f;
      const float* r = t + idx[j] * classes;
      for (int64_t c = 0; c < classes; ++c) row[c] += x * r[c];
    }
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < classes; ++c) {
      row[c] = temperature == 1.0 ? row[c] + bi[c] : (row[c] + bi[c]) / temp;
      top = std::max(top, row[c]);
    }
    float sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += (row[c] = std::exp(row[c] - top));
    for (int64_t c = 0; c < classes; ++c) row[c] /= sum;
  }
  return true;
}

}  // namespace

torch::Tensor predict_proba(Model& model, const Batch& batch, int64_t chunk, torch::Device device, double temperature) {
  if (chunk < 1) throw ConfigError("predict_proba: chunk must be >= 1, got " + std::to_string(chunk));
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    throw ConfigError("predict_proba: temperature must be a finite number > 0, got " + std::to_string(temperature));
  }
  torch::InferenceMode guard;
  torch::Tensor direct;
  if (device.is_cpu() && linear_proba(model, batch, temperature, direct)) return direct;
  auto out = torch::empty({batch.size(), model.num_classes()}, torch::kFloat32);
  for (int64_t start = 0; start < batch.size(); start += chunk) {
    const int64_t count = std::min(chunk, batch.size() - start);
    auto part = batch.slice(start, count);
    if (!device.is_cpu()) part = part.to(device);
    auto logits = model.forward(part);
    if (temperature != 1.0) logits = logits / temperature;
    out.narrow(0, start, count).copy_(torch::softmax(logits, 1).to(torch::kCPU, torch::kFloat32));
  }
  return out;
}

}  // namespace kiln::nn
