#include "kiln/artifact/artifact.h"

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"
#include "kiln/core/version.h"

namespace fs = std::filesystem;

namespace kiln::artifact {
namespace {

std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Every tensor that defines the model: parameters, then buffers, by their module path.
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(nn::TextClassifier& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : model.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

core::DType to_dtype(const torch::Tensor& t, const std::string& name) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return core::DType::kF32;
    case torch::kFloat64: return core::DType::kF64;
    case torch::kInt64: return core::DType::kI64;
    case torch::kInt32: return core::DType::kI32;
    case torch::kUInt8: return core::DType::kU8;
    case torch::kBool: return core::DType::kBool;
    default:
      throw ArtifactError("cannot save tensor '" + name + "' of type " + std::string(c10::toString(t.scalar_type())));
  }
}

torch::ScalarType to_scalar_type(core::DType d) {
  switch (d) {
    case core::DType::kF32: return torch::kFloat32;
    case core::DType::kF64: return torch::kFloat64;
    case core::DType::kI64: return torch::kInt64;
    case core::DType::kI32: return torch::kInt32;
    case core::DType::kU8: return torch::kUInt8;
    case core::DType::kBool: return torch::kBool;
    default: return torch::kFloat32;
  }
}

nlohmann::json read_json_file(const fs::path& path, const std::string& what) {
  if (!fs::exists(path)) {
    throw ArtifactError(path.string() + ": missing; " + what);
  }
  std::string text = core::read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ArtifactError(path.string() + ": not valid JSON (byte " + std::to_string(e.byte) +
                        "); the artifact is corrupt: retrain or restore it from a copy");
  }
}

}  // namespace

nlohmann::json to_json(const Manifest& m) {
  return {{"format_version", m.format_version},
          {"kiln_version", m.kiln_version},
          {"created_at", m.created_at},
          {"task", m.task},
          {"labels", m.labels},
          {"featurizer", m.featurizer},
          {"model", nn::to_json(m.model)},
          {"input_dim", m.input_dim},
          {"training", m.training},
          {"metrics", m.metrics},
          {"data_profile", m.data_profile}};
}

Manifest manifest_from_json(const nlohmann::json& j, const std::string& where) {
  auto fail = [&](const std::string& what) { throw ArtifactError(where + ": " + what); };
  if (!j.is_object()) fail("expected a JSON object; this is not a Kiln artifact manifest");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer()) {
    fail("no integer \"format_version\"; this is not a Kiln artifact (or it is corrupt)");
  }
  Manifest m;
  m.format_version = j["format_version"].get<int>();
  if (m.format_version > kFormatVersion) {
    fail("artifact format " + std::to_string(m.format_version) + " is newer than this Kiln (" + kiln::version() +
         ") reads (format " + std::to_string(kFormatVersion) + "); upgrade kiln to load it");
  }
  if (m.format_version < 1) fail("format_version " + std::to_string(m.format_version) + " is invalid");
  try {
    m.kiln_version = j.value("kiln_version", "");
    m.created_at = j.value("created_at", "");
    m.task = j.at("task").get<std::string>();
    m.labels = j.at("labels").get<std::vector<std::string>>();
    m.featurizer = j.at("featurizer");
    m.model = nn::model_spec_from_json(j.at("model"));
    m.input_dim = j.at("input_dim").get<int64_t>();
    m.training = j.value("training", nlohmann::json::object());
    m.metrics = j.value("metrics", nlohmann::json::object());
    m.data_profile = j.value("data_profile", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("malformed manifest: ") + e.what());
  } catch (const ConfigError& e) {
    fail(std::string("malformed model spec: ") + e.what());
  }
  if (m.task != "text-classification") fail("task '" + m.task + "' is not supported (expected text-classification)");
  if (m.labels.size() < 2) fail("\"labels\" must list at least 2 classes, got " + std::to_string(m.labels.size()));
  if (m.input_dim < 1) fail("\"input_dim\" must be >= 1, got " + std::to_string(m.input_dim));
  if (!m.featurizer.is_object() || !m.featurizer.contains("type")) fail("\"featurizer\" must be an object with a \"type\"");
  return m;
}

void save_artifact(const std::string& dir, Manifest manifest, const text::Featurizer& featurizer,
                   nn::TextClassifier& model) {
  manifest.format_version = kFormatVersion;
  manifest.kiln_version = kiln::version();
  if (manifest.created_at.empty()) manifest.created_at = utc_now();
  manifest.featurizer = featurizer.spec();
  manifest.input_dim = featurizer.dim();
  if (static_cast<int64_t>(manifest.labels.size()) != model.num_classes()) {
    throw ArtifactError("cannot save artifact: " + std::to_string(manifest.labels.size()) + " labels but the model has " +
                        std::to_string(model.num_classes()) + " outputs");
  }

  core::AtomicDirectory out(dir);
  auto tensors = model_tensors(model);
  std::vector<torch::Tensor> keep;  // contiguous CPU copies alive while writing
  std::vector<std::pair<std::string, core::TensorView>> views;
  for (auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    keep.push_back(c);
    core::TensorView v;
    v.dtype = to_dtype(c, name);
    v.shape.assign(c.sizes().begin(), c.sizes().end());
    v.data = static_cast<const std::byte*>(c.data_ptr());
    v.nbytes = static_cast<std::size_t>(c.numel()) * c.element_size();
    views.emplace_back(name, v);
  }
  core::save_safetensors(out.path() / "model.safetensors", views,
                         {{"format", "pt"}, {"kiln_format_version", std::to_string(kFormatVersion)}});
  core::write_file_atomic(out.path() / "featurizer.json", featurizer.state().dump() + "\n");
  core::write_file_atomic(out.path() / "kiln.json", to_json(manifest).dump(2) + "\n");
  out.commit();
}

ArtifactLocation locate_artifact(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::exists(root)) throw ArtifactError(dir + ": artifact directory not found; pass the --out directory of kiln train");
  if (!fs::is_directory(root)) {
    throw ArtifactError(dir + ": is a file; an artifact is a directory holding kiln.json, model.safetensors and "
                              "featurizer.json");
  }
  if (fs::exists(root / "kiln.json")) return {dir, false};
  const fs::path inner = root / "model";
  if (fs::exists(inner / "kiln.json")) return {inner.string(), true};
  throw ArtifactError((root / "kiln.json").string() + ": missing, and so is " + (inner / "kiln.json").string() +
                      "; this is not a Kiln artifact directory: pass the directory that holds kiln.json (kiln train "
                      "and kiln run write it to OUT/model; OUT itself works too)");
}

Artifact load_artifact(const std::string& dir) {
  const fs::path root(locate_artifact(dir).dir);
  const fs::path manifest_path = root / "kiln.json";
  Artifact a;
  a.manifest = manifest_from_json(
      read_json_file(manifest_path, "this is not a Kiln artifact directory (pass the --out directory of kiln train)"),
      manifest_path.string());
  const fs::path feat_path = root / "featurizer.json";
  auto state = read_json_file(feat_path, "the artifact is incomplete: retrain or restore it from a copy");
  try {
    a.featurizer = text::load_featurizer(a.manifest.featurizer, state);
  } catch (const Error& e) {
    throw ArtifactError(feat_path.string() + ": " + e.what());
  }
  if (a.featurizer->dim() != a.manifest.input_dim) {
    throw ArtifactError(feat_path.string() + ": the featurizer has " + std::to_string(a.featurizer->dim()) +
                        " features but kiln.json says input_dim " + std::to_string(a.manifest.input_dim) +
                        "; the files come from different models");
  }
  try {
    a.model = nn::make_model(a.manifest.model, a.manifest.input_dim, static_cast<int64_t>(a.manifest.labels.size()));
  } catch (const ConfigError& e) {
    throw ArtifactError(manifest_path.string() + ": model spec: " + e.what());
  }

  const fs::path weights_path = root / "model.safetensors";
  if (!fs::exists(weights_path)) {
    throw ArtifactError(weights_path.string() + ": missing; the artifact is incomplete: retrain or restore it");
  }
  auto file = core::SafetensorsFile::load(weights_path.string());
  auto tensors = model_tensors(*a.model);
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : tensors) {
    expected.insert(name);
    if (!file.has(name)) {
      throw ArtifactError(weights_path.string() + ": tensor '" + name + "' is missing; the weights do not belong to " +
                          "this model spec (" + a.manifest.model.family + ")");
    }
    const core::TensorView& v = file.get(name);
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    if (v.shape != shape) {
      auto fmt = [](const std::vector<int64_t>& s) {
        std::string r = "[";
        for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
        return r + "]";
      };
      throw ArtifactError(weights_path.string() + ": tensor '" + name + "' has shape " + fmt(v.shape) +
                          " but the model expects " + fmt(shape));
    }
    if (to_scalar_type(v.dtype) != t.scalar_type() || to_dtype(t, name) != v.dtype) {
      throw ArtifactError(weights_path.string() + ": tensor '" + name + "' has dtype " + std::string(core::dtype_name(v.dtype)) +
                          " but the model expects " + std::string(c10::toString(t.scalar_type())));
    }
    std::memcpy(t.data_ptr(), v.data, v.nbytes);
  }
  for (const auto& name : file.names()) {
    if (!expected.count(name)) {
      throw ArtifactError(weights_path.string() + ": unexpected tensor '" + name +
                          "'; the weights do not belong to this model spec");
    }
  }
  a.model->eval();
  return a;
}

}  // namespace kiln::artifact
