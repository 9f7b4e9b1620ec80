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
#include "kiln/data/image.h"

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
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(nn::Model& model) {
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

// A held-out image's path as heldout.jsonl stores it: relative to the artifact directory, which
// load_heldout resolves paths against (the data set's own paths are relative to its file's folder),
// or absolute when no relative path leads there (another file system root). Lexical, after making
// both absolute against the current directory, as data::to_csv rewrites split files' paths.
std::string heldout_image_path(const data::Dataset& ds, std::size_t i, const std::string& artifact_dir) {
  const std::string& path = ds.images[i].path;
  if (path.empty()) return path;
  const fs::path image = fs::absolute(data::resolve_image_path(ds.base_dir, path)).lexically_normal();
  const fs::path rel = image.lexically_relative(fs::absolute(artifact_dir).lexically_normal());
  return rel.empty() ? image.string() : rel.string();
}

}  // namespace

void save_artifact(const std::string& dir, Manifest manifest,
                   const prep::Preprocessors& preprocessors, nn::Model& model,
                   const data::Dataset* heldout) {
  manifest.format_version = kFormatVersion;
  manifest.kiln_version = kiln::version();
  if (manifest.created_at.empty()) manifest.created_at = utc_now();
  if (preprocessors.empty()) throw ArtifactError("cannot save artifact: the model has no preprocessor");
  manifest.inputs = prep::combined_input_spec(preprocessors);
  if (static_cast<int64_t>(manifest.labels.size()) != model.num_classes()) {
    throw ArtifactError("cannot save artifact: " + std::to_string(manifest.labels.size()) + " labels but the model has " +
                        std::to_string(model.num_classes()) + " outputs");
  }

  core::AtomicDirectory out(dir);
  manifest.preprocessors.clear();
  std::set<std::string> used = {"kiln.json", "model.safetensors", "heldout.jsonl"};
  for (const auto& p : preprocessors) {
    PreprocessorEntry entry{p->spec(), {}};
    for (const auto& [role, contents] : p->state_files()) {
      // A role naming its own format ("vocab.txt") keeps it; other state files are JSON.
      const std::string ext = role.find('.') == std::string::npos ? ".json" : "";
      std::string name = p->type() + (role == "state" ? "" : "." + role) + ext;
      for (int k = 2; used.count(name); ++k) name = p->type() + "-" + std::to_string(k) + "." + role + ext;
      used.insert(name);
      out.write_file(name, contents.empty() || contents.back() == '\n' ? contents : contents + "\n");
      entry.files[role] = name;
    }
    manifest.preprocessors.push_back(std::move(entry));
  }

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
  {
    core::AtomicFile weights(out, "model.safetensors");
    core::write_safetensors(weights, views,
                            {{"format", "pt"}, {"kiln_format_version", std::to_string(kFormatVersion)}});
    weights.commit();
  }
  manifest.heldout = {};
  if (heldout && heldout->size() > 0) {
    std::string lines;
    for (std::size_t i = 0; i < heldout->size(); ++i) {
      nlohmann::json row = {{"label", heldout->labels[i]}};
      if (heldout->has_text()) row["text"] = heldout->texts[i];
      if (heldout->has_images()) row["image"] = heldout_image_path(*heldout, i, dir);
      lines += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    }
    out.write_file("heldout.jsonl", lines);
    manifest.heldout = {"heldout.jsonl", static_cast<int64_t>(heldout->size()), "validation split"};
  }
  out.write_file("kiln.json", to_json(manifest).dump(2) + "\n");
  out.commit();
}

ArtifactLocation locate_artifact(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::exists(root)) throw ArtifactError(dir + ": artifact directory not found; pass the --out directory of kiln train");
  if (!fs::is_directory(root)) {
    throw ArtifactError(dir + ": is a file; an artifact is a directory holding kiln.json, model.safetensors and "
                              "its preprocessors' state files (see docs/artifact.md)");
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
  a.dir = root.string();
  a.manifest = manifest_from_json(
      read_json_file(manifest_path, "this is not a Kiln artifact directory (pass the --out directory of kiln train)"),
      manifest_path.string());
  for (const auto& entry : a.manifest.preprocessors) {
    prep::StateFiles files;
    fs::path first;
    for (const auto& [role, name] : entry.files) {
      const fs::path path = root / name;
      if (first.empty()) first = path;
      if (!fs::exists(path)) {
        throw ArtifactError(path.string() + ": missing; the artifact is incomplete: retrain or restore it from a copy");
      }
      files[role] = core::read_file(path);
      if (path.extension() == ".json") (void)read_json_file(path, "");  // names a corrupt file before its parser does
    }
    try {
      a.preprocessors.push_back(prep::load_preprocessor(entry.spec, files));
    } catch (const Error& e) {
      throw ArtifactError((first.empty() ? manifest_path : first).string() + ": " + e.what());
    }
  }
  const nn::InputSpec produced = prep::combined_input_spec(a.preprocessors);
  for (const auto& expected : a.manifest.inputs.tensors) {
    const nn::TensorSpec* got = produced.find(expected.name);
    if (!got || got->dtype != expected.dtype || got->vocab_size != expected.vocab_size) {
      const std::string file = a.manifest.format_version == 1 ? (root / "featurizer.json").string() : manifest_path.string();
      throw ArtifactError(file + ": the preprocessors produce " + produced.describe() + " but kiln.json says the inputs are " +
                          a.manifest.inputs.describe() + "; the files come from different models");
    }
  }
  try {
    a.model = nn::make_model(a.manifest.model, a.manifest.inputs, static_cast<int64_t>(a.manifest.labels.size()));
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

namespace kiln::artifact {

data::Dataset load_heldout(const std::string& dir) {
  const fs::path root(locate_artifact(dir).dir);
  const Manifest m = manifest_from_json(read_json_file(root / "kiln.json", "this is not a Kiln artifact directory"),
                                        (root / "kiln.json").string());
  data::Dataset ds;
  if (m.heldout.file.empty()) return ds;
  const fs::path path = root / m.heldout.file;
  if (!fs::exists(path)) throw ArtifactError(path.string() + ": missing; kiln.json lists a held-out sample here");
  const std::string text = core::read_file(path);
  ds.base_dir = root.string();
  std::size_t line = 0, pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    ++line;
    const std::string_view row(text.data() + pos, end - pos);
    pos = end + 1;
    if (row.empty()) continue;
    try {
      const auto j = nlohmann::json::parse(row);
      data::Example e;
      e.label = j.at("label").get<std::string>();
      if (j.contains("text")) e.text = j["text"].get<std::string>();
      if (j.contains("image")) e.image = data::ImageRef{j["image"].get<std::string>(), {}};
      ds.push_back(e);
    } catch (const std::exception& e) {
      throw ArtifactError(path.string() + ":" + std::to_string(line) + ": malformed held-out example (" + e.what() +
                          "); the artifact is corrupt: retrain or restore it from a copy");
    }
  }
  return ds;
}

}  // namespace kiln::artifact
