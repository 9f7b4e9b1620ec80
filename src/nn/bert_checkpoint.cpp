// Hugging Face BERT checkpoint directories: config.json + model.safetensors, read and written.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"
#include "kiln/nn/bert.h"

namespace kiln::nn {

namespace fs = std::filesystem;

namespace {

bool has_prefix(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string conversion_hint(const fs::path& dir) {
  const std::string d = dir.string();
  return "Kiln reads model.safetensors only; convert the checkpoint with python3-torch and safetensors:\n"
         "  python3 -c \"import torch; from safetensors.torch import save_file; sd = torch.load('" +
         d + "/pytorch_model.bin', map_location='cpu'); save_file({k: v.clone().contiguous() for k, v in sd.items()}, '" + d +
         "/model.safetensors', metadata={'format': 'pt'})\"\n"
         "or with transformers: AutoModel.from_pretrained('" + d + "').save_pretrained('" + d +
         "', safe_serialization=True)";
}

// The file tensor `view` as a float32 tensor (a copy).
torch::Tensor to_float(const core::TensorView& view, const std::string& name, const std::string& source) {
  c10::ScalarType type;
  switch (view.dtype) {
    case core::DType::kF32: type = torch::kFloat32; break;
    case core::DType::kF64: type = torch::kFloat64; break;
    case core::DType::kF16: type = torch::kFloat16; break;
    case core::DType::kBF16: type = torch::kBFloat16; break;
    default:
      throw ArtifactError(source + ": tensor '" + name + "' has dtype " + std::string(core::dtype_name(view.dtype)) +
                          "; BERT weights must be F32, F16, BF16 or F64");
  }
  auto t = torch::from_blob(const_cast<std::byte*>(view.data), view.shape, torch::TensorOptions().dtype(type));
  return t.to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
}

nlohmann::json read_config_json(const fs::path& path) {
  try {
    return nlohmann::json::parse(core::read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

LoadedBert load_hf_checkpoint(const fs::path& dir, const BertLoadOptions& options) {
  if (!fs::is_directory(dir)) {
    throw IoError(dir.string() + " is not a directory; expected a Hugging Face BERT checkpoint directory "
                                 "(config.json + model.safetensors)");
  }
  const fs::path config_path = dir / "config.json";
  const fs::path weights_path = dir / "model.safetensors";
  if (!fs::exists(config_path)) {
    throw ArtifactError(config_path.string() +
                        " is missing; a Hugging Face BERT checkpoint directory holds config.json and model.safetensors "
                        "(transformers' save_pretrained writes both)");
  }
  const nlohmann::json j = read_config_json(config_path);
  const std::string where = config_path.string() + ": ";
  BertOptions o;
  o.config = BertConfig::from_json(j, where);

  const nlohmann::json kiln = j.is_object() && j.contains("kiln") && j["kiln"].is_object() ? j["kiln"] : nlohmann::json::object();
  if (options.pooling) {
    o.pooling = *options.pooling;
  } else if (kiln.contains("pooling")) {
    const auto p = kiln["pooling"];
    if (p != "cls" && p != "mean") throw ConfigError(where + "kiln.pooling must be \"cls\" or \"mean\", got " + p.dump());
    o.pooling = p == "mean" ? BertPooling::kMean : BertPooling::kCls;
  }
  if (kiln.contains("pre_ln")) {
    if (!kiln["pre_ln"].is_boolean()) throw ConfigError(where + "kiln.pre_ln must be true or false, got " + kiln["pre_ln"].dump());
    o.pre_ln = kiln["pre_ln"].get<bool>();
  }
  if (kiln.contains("residual_scale")) {
    if (!kiln["residual_scale"].is_number()) {
      throw ConfigError(where + "kiln.residual_scale must be a number > 0, got " + kiln["residual_scale"].dump());
    }
    o.residual_scale = kiln["residual_scale"].get<double>();
  }
  if (options.classifier_dropout) {
    o.classifier_dropout = *options.classifier_dropout;
  } else if (j.contains("classifier_dropout") && j["classifier_dropout"].is_number()) {
    o.classifier_dropout = j["classifier_dropout"].get<double>();
  } else {
    o.classifier_dropout = o.config.hidden_dropout_prob;
  }

  if (!fs::exists(weights_path)) {
    if (fs::exists(dir / "pytorch_model.bin")) {
      throw ArtifactError(dir.string() + " has pytorch_model.bin but no model.safetensors. " + conversion_hint(dir));
    }
    throw ArtifactError(weights_path.string() + " is missing; a Hugging Face BERT checkpoint directory holds config.json "
                                                "and model.safetensors");
  }
  const auto file = core::SafetensorsFile::load(weights_path);
  const std::string source = weights_path.string();

  if (options.num_classes) {
    o.num_classes = *options.num_classes;
  } else if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
    o.num_classes = static_cast<int64_t>(j["id2label"].size());
  } else if (j.contains("num_labels") && j["num_labels"].is_number_integer()) {
    o.num_classes = j["num_labels"].get<int64_t>();
  } else if (file.has("classifier.weight") && file.get("classifier.weight").shape.size() == 2) {
    o.num_classes = file.get("classifier.weight").shape[0];
  }

  LoadedBert out;
  out.model = std::make_shared<BertModel>(o);
  BertLoadReport& report = out.report;
  report.source = source;
  if (fs::exists(dir / "vocab.txt")) report.vocab = dir / "vocab.txt";

  auto params = out.model->named_parameters();
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& name : file.names()) {
    std::string m = name;
    if (has_prefix(m, "bert.")) {
      report.prefixed = true;
      m = m.substr(5);
    }
    if (has_suffix(m, "LayerNorm.gamma")) m = m.substr(0, m.size() - 5) + "weight";  // TF-era names
    if (has_suffix(m, "LayerNorm.beta")) m = m.substr(0, m.size() - 4) + "bias";
    if (m == "embeddings.position_ids") continue;  // a buffer transformers used to save; arange(max_position)
    if (has_prefix(name, "cls.")) {
      report.heads_ignored.push_back(name);
      continue;
    }
    if (!params.contains(m)) {
      report.unexpected.push_back(name);
      continue;
    }
    auto& p = params[m];
    const auto& view = file.get(name);
    if (c10::IntArrayRef(view.shape) != p.sizes()) {
      if (has_prefix(m, "classifier.")) {
        report.classifier_reinitialized = "the checkpoint's " + name + " is " + shape_text(view.shape) +
                                          " but the model has " + std::to_string(o.num_classes) + " classes";
        continue;
      }
      throw ArtifactError(source + ": tensor '" + name + "' has shape " + shape_text(view.shape) + ", expected " +
                          shape_text(p.sizes()) + " (from " + config_path.string() +
                          "); the weights do not match config.json");
    }
    p.copy_(to_float(view, name, source));
    loaded.insert(m);
  }
  for (const auto& item : params) {
    if (loaded.count(item.key())) continue;
    if (has_prefix(item.key(), "classifier.")) continue;
    report.missing.push_back(report.prefixed ? "bert." + item.key() : item.key());
  }
  report.classifier_loaded = loaded.count("classifier.weight") && loaded.count("classifier.bias");
  if (!report.classifier_loaded && report.classifier_reinitialized.empty()) {
    report.classifier_reinitialized = "the checkpoint has no classifier.weight/classifier.bias";
  }
  return out;
}

void save_hf_checkpoint(BertModel& model, const fs::path& dir) {
  const BertOptions& o = model.options();
  nlohmann::json j = o.config.to_json();
  j["architectures"] = {"BertForSequenceClassification"};
  j["classifier_dropout"] = o.classifier_dropout;
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (int64_t c = 0; c < model.num_classes(); ++c) {
    id2label[std::to_string(c)] = "LABEL_" + std::to_string(c);
    label2id["LABEL_" + std::to_string(c)] = c;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;
  j["torch_dtype"] = "float32";
  j["kiln"] = {{"pooling", o.pooling == BertPooling::kMean ? "mean" : "cls"},
               {"pre_ln", o.pre_ln},
               {"residual_scale", o.residual_scale}};

  std::vector<torch::Tensor> keep;  // owns the bytes the views point at
  std::vector<std::pair<std::string, core::TensorView>> tensors;
  for (const auto& item : model.named_parameters()) {
    auto t = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    keep.push_back(t);
    core::TensorView view;
    view.dtype = core::DType::kF32;
    view.shape.assign(t.sizes().begin(), t.sizes().end());
    view.data = static_cast<const std::byte*>(t.data_ptr());
    view.nbytes = static_cast<std::size_t>(t.numel()) * sizeof(float);
    tensors.emplace_back(has_prefix(item.key(), "classifier.") ? item.key() : "bert." + item.key(), view);
  }
  core::AtomicDirectory out(dir);
  core::write_file_atomic(out.path() / "config.json", j.dump(2) + "\n");
  core::save_safetensors(out.path() / "model.safetensors", tensors, {{"format", "pt"}});
  out.commit();
}

}  // namespace kiln::nn
