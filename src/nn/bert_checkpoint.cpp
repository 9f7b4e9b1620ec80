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

// config.json as save_hf_checkpoint / save_hf_mlm_checkpoint write it, without the head fields.
nlohmann::json checkpoint_config(const BertOptions& o) {
  nlohmann::json j = o.config.to_json();
  j["torch_dtype"] = "float32";
  j["kiln"] = {{"pooling", o.pooling == BertPooling::kMean ? "mean" : "cls"},
               {"pre_ln", o.pre_ln},
               {"residual_scale", o.residual_scale}};
  if (!o.layer_norm) j["kiln"]["layer_norm"] = false;
  return j;
}

// Float32 CPU copies of tensors and the views save_safetensors reads.
struct TensorList {
  std::vector<torch::Tensor> keep;  // owns the bytes the views point at
  std::vector<std::pair<std::string, core::TensorView>> views;

  void add(const std::string& name, const torch::Tensor& value) {
    auto t = value.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    keep.push_back(t);
    core::TensorView view;
    view.dtype = core::DType::kF32;
    view.shape.assign(t.sizes().begin(), t.sizes().end());
    view.data = static_cast<const std::byte*>(t.data_ptr());
    view.nbytes = static_cast<std::size_t>(t.numel()) * sizeof(float);
    views.emplace_back(name, view);
  }
};

// Lines of vocab.txt (HF reads one token a line; a trailing newline ends the last).
int64_t count_vocab_lines(const std::string& text) {
  int64_t n = 0;
  for (char c : text) n += c == '\n';
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
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
      throw ConfigError(where + "kiln.residual_scale must be a number >= 0, got " + kiln["residual_scale"].dump());
    }
    o.residual_scale = kiln["residual_scale"].get<double>();
  }
  if (kiln.contains("layer_norm")) {
    if (!kiln["layer_norm"].is_boolean()) {
      throw ConfigError(where + "kiln.layer_norm must be true or false, got " + kiln["layer_norm"].dump());
    }
    o.layer_norm = kiln["layer_norm"].get<bool>();
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
  nlohmann::json j = checkpoint_config(o);
  j["architectures"] = {"BertForSequenceClassification"};
  j["classifier_dropout"] = o.classifier_dropout;
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (int64_t c = 0; c < model.num_classes(); ++c) {
    id2label[std::to_string(c)] = "LABEL_" + std::to_string(c);
    label2id["LABEL_" + std::to_string(c)] = c;
  }
  j["id2label"] = id2label;
  j["label2id"] = label2id;

  TensorList tensors;
  for (const auto& item : model.named_parameters()) {
    tensors.add(has_prefix(item.key(), "classifier.") ? item.key() : "bert." + item.key(), item.value());
  }
  core::AtomicDirectory out(dir);
  core::write_file_atomic(out.path() / "config.json", j.dump(2) + "\n");
  core::save_safetensors(out.path() / "model.safetensors", tensors.views, {{"format", "pt"}});
  out.commit();
}

void save_hf_mlm_checkpoint(BertModel& model, BertMlmHead& head, const std::string& vocab_text, const fs::path& dir) {
  nlohmann::json j = checkpoint_config(model.options());
  j["architectures"] = {"BertForMaskedLM"};
  TensorList tensors;
  for (const auto& item : model.named_parameters()) {
    // BertForMaskedLM has no pooler and no classifier.
    if (has_prefix(item.key(), "classifier.") || has_prefix(item.key(), "pooler.")) continue;
    tensors.add("bert." + item.key(), item.value());
  }
  for (const auto& item : head.named_parameters()) tensors.add("cls.predictions." + item.key(), item.value());
  core::AtomicDirectory out(dir);
  core::write_file_atomic(out.path() / "config.json", j.dump(2) + "\n");
  core::save_safetensors(out.path() / "model.safetensors", tensors.views, {{"format", "pt"}});
  core::write_file_atomic(out.path() / "vocab.txt", vocab_text);
  out.commit();
}

void load_hf_mlm_head(const fs::path& dir, BertMlmHead& head) {
  const fs::path weights_path = dir / "model.safetensors";
  if (!fs::exists(weights_path)) {
    throw ArtifactError(weights_path.string() + " is missing; a BertForMaskedLM checkpoint directory holds config.json "
                                                "and model.safetensors");
  }
  const auto file = core::SafetensorsFile::load(weights_path);
  const std::string source = weights_path.string();
  torch::NoGradGuard no_grad;
  for (auto& item : head.named_parameters()) {
    const std::string name = "cls.predictions." + item.key();
    if (!file.has(name)) {
      throw ArtifactError(source + ": tensor '" + name + "' is missing; the directory holds no masked-LM head "
                          "(BertForMaskedLM, as `kiln pretrain` writes)");
    }
    const auto& view = file.get(name);
    if (c10::IntArrayRef(view.shape) != item.value().sizes()) {
      throw ArtifactError(source + ": tensor '" + name + "' has shape " + shape_text(view.shape) + ", expected " +
                          shape_text(item.value().sizes()) + "; the weights do not match config.json");
    }
    item.value().copy_(to_float(view, name, source));
  }
}

PretrainedStart bert_pretrained_start(const std::string& dir_text, const nlohmann::json& params) {
  fs::path dir(dir_text);
  // A `kiln pretrain` run directory holds the model in model/.
  if (!fs::exists(dir / "config.json") && fs::exists(dir / "model" / "config.json")) dir /= "model";
  const std::string layout = "a Hugging Face BERT directory (config.json, model.safetensors, vocab.txt), as "
                             "`kiln pretrain --out` or transformers' save_pretrained writes";
  if (!fs::is_directory(dir)) throw IoError(dir_text + ": not a directory; expected " + layout);
  const fs::path config_path = dir / "config.json";
  const fs::path vocab_path = dir / "vocab.txt";
  if (!fs::exists(config_path)) {
    throw ArtifactError(dir_text + ": " + config_path.string() + " is missing; expected " + layout);
  }
  if (!fs::exists(vocab_path)) {
    throw ArtifactError(dir_text + ": " + vocab_path.string() +
                        " is missing; the checkpoint's vocabulary must come with it (transformers' "
                        "tokenizer.save_pretrained(DIR) writes vocab.txt)");
  }
  if (!fs::exists(dir / "model.safetensors")) {
    if (fs::exists(dir / "pytorch_model.bin")) {
      throw ArtifactError(dir_text + ": has pytorch_model.bin but no model.safetensors. " +
                          conversion_hint(dir));
    }
    throw ArtifactError(dir_text + ": " + (dir / "model.safetensors").string() + " is missing; expected " +
                        layout);
  }
  const nlohmann::json j = read_config_json(config_path);
  const BertConfig c = BertConfig::from_json(j, config_path.string() + ": ");
  const int64_t vocab_lines = count_vocab_lines(core::read_file(vocab_path));
  if (vocab_lines > c.vocab_size) {
    throw ArtifactError(dir_text + ": " + vocab_path.string() + " has " + std::to_string(vocab_lines) +
                        " tokens but " + config_path.string() + " says vocab_size " + std::to_string(c.vocab_size) +
                        "; the vocabulary does not belong to this checkpoint");
  }
  // What the checkpoint fixes may not be set by the run as well ("preset" is replaced).
  static const char* const kFixed[] = {"vocab_size",      "hidden_size",      "num_hidden_layers", "num_attention_heads",
                                       "intermediate_size", "hidden_act",     "max_position_embeddings",
                                       "type_vocab_size", "layer_norm_eps",   "initializer_range", "pad_token_id",
                                       "pre_ln",          "residual_scale",   "layer_norm"};
  for (const char* key : kFixed) {
    if (params.contains(key) && !params[key].is_null()) {
      throw ConfigError("model.params." + std::string(key) + " is set (" + params[key].dump() + ") but the pretrained "
                        "directory " + dir_text + " fixes it (" + config_path.string() + "); drop model.params." + key);
    }
  }
  PretrainedStart start;
  nlohmann::json p = params.is_object() ? params : nlohmann::json::object();
  const nlohmann::json cj = c.to_json();
  for (const char* key : kFixed) {
    if (cj.contains(key)) p[key] = cj[key];
  }
  for (const char* key : {"hidden_dropout_prob", "attention_probs_dropout_prob"}) {
    if (!p.contains(key) || p[key].is_null()) p[key] = cj[key];
  }
  const nlohmann::json kiln = j.contains("kiln") && j["kiln"].is_object() ? j["kiln"] : nlohmann::json::object();
  p["pre_ln"] = kiln.value("pre_ln", false);
  p["residual_scale"] = kiln.value("residual_scale", 1.0);
  p["layer_norm"] = kiln.value("layer_norm", true);
  if ((!p.contains("pooling") || p["pooling"].is_null()) && kiln.contains("pooling")) p["pooling"] = kiln["pooling"];
  p.erase("preset");
  start.params = p;

  start.featurizer = {{"type", "wordpiece"}, {"vocab", vocab_path.string()}};
  const fs::path tokenizer_config = dir / "tokenizer_config.json";
  if (fs::exists(tokenizer_config)) {
    const nlohmann::json t = read_config_json(tokenizer_config);
    if (t.is_object() && t.contains("do_lower_case") && t["do_lower_case"].is_boolean()) {
      start.featurizer["lowercase"] = t["do_lower_case"];
    }
  }
  start.load_weights = [dir](Model& model) {
    auto* bert = dynamic_cast<BertModel*>(&model);
    if (!bert) throw ConfigError(dir.string() + ": a BERT checkpoint, but the model is not a bert model");
    BertLoadOptions lo;
    lo.num_classes = model.num_classes();
    const LoadedBert loaded = load_hf_checkpoint(dir, lo);
    torch::NoGradGuard no_grad;
    auto from = loaded.model->named_parameters();
    for (auto& item : bert->named_parameters()) {
      if (has_prefix(item.key(), "classifier.")) continue;  // the new task's head starts new
      item.value().copy_(from[item.key()]);
    }
    std::vector<std::string> notes;
    const auto& r = loaded.report;
    auto list = [](const std::vector<std::string>& names) {
      std::string out;
      for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
      if (names.size() > 8) out += ", ... (" + std::to_string(names.size()) + " in all)";
      return out;
    };
    if (!r.missing.empty()) notes.push_back("pretrained weights: " + r.source + " lacks " + list(r.missing) + "; initialised new");
    if (!r.unexpected.empty()) notes.push_back("pretrained weights: " + r.source + " has tensors the model does not use: " + list(r.unexpected));
    return notes;
  };
  return start;
}

}  // namespace kiln::nn
