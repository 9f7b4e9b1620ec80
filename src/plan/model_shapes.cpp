// Model layouts counted without building them: parameters, forward FLOPs and kept activations of
// the families Kiln trains (src/nn), at a job's sequence length / image size. tests/plan checks the
// parameter counts against the built LibTorch models.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"
#include "kiln/plan/plan.h"

namespace kiln::plan {
namespace {

struct BertSize {
  const char* name;
  int64_t layers, hidden, heads, intermediate;
};
// The bert family's presets (src/nn/bert_config.cpp) plus BERT-large, which users bring.
constexpr BertSize kBertSizes[] = {{"tiny", 2, 128, 2, 512},     {"mini", 4, 256, 4, 1024},
                                   {"small", 4, 512, 8, 2048},   {"medium", 8, 512, 8, 2048},
                                   {"base", 12, 768, 12, 3072},  {"large", 24, 1024, 16, 4096}};

struct BertLayout {
  int64_t vocab = 30522, hidden = 768, layers = 12, heads = 12, intermediate = 3072;
  int64_t positions = 512, type_vocab = 2;
  bool pre_ln = false;
};

ModelShape bert_shape(const std::string& name, const BertLayout& b, const JobSpec& job) {
  const double H = static_cast<double>(b.hidden), I = static_cast<double>(b.intermediate);
  const double s = static_cast<double>(job.seq_len), a = static_cast<double>(b.heads);
  const double C = static_cast<double>(job.classes), L = static_cast<double>(b.layers);
  if (job.seq_len > b.positions) {
    throw ConfigError("plan: --seq-len " + std::to_string(job.seq_len) + " is longer than the model's " +
                      std::to_string(b.positions) + " position embeddings; use --seq-len " +
                      std::to_string(b.positions) + " or less (texts are truncated or windowed to it)");
  }
  ModelShape m;
  m.name = name;
  m.family = "bert";
  m.embedding_params = (b.vocab + b.positions + b.type_vocab) * b.hidden;
  const int64_t per_layer = 4 * (b.hidden * b.hidden + b.hidden) + 2 * b.hidden * b.intermediate + b.intermediate +
                            b.hidden + 4 * b.hidden;
  m.params = m.embedding_params + 2 * b.hidden + b.layers * per_layer + (b.pre_ln ? 2 * b.hidden : 0) +
             (b.hidden * b.hidden + b.hidden) + (b.hidden * job.classes + job.classes);
  // Per sequence: every projection is a matmul over s tokens, attention scores and their use of V
  // are 2·s²·H each per layer; the pooler and classifier run on [CLS] only.
  m.forward_flops = L * (2 * s * (4 * H * H + 2 * H * I) + 4 * s * s * H) + 2 * H * H + 2 * H * C;
  // Korthikanti et al. (2022), per layer s·b·h·(34 + 5·a·s/h) bytes at b = 1 (16-bit values, one-byte
  // dropout masks: 2·s·h for the two hidden dropouts, a·s² for attention dropout), plus the
  // embedding LayerNorm and dropout (5·s·h).
  const bool masks = job.dropout > 0;
  m.activation_bytes_16 = L * (34 * s * H + 5 * a * s * s) + 5 * s * H;
  m.mask_bytes = masks ? L * (2 * s * H + a * s * s) + s * H : 0;
  if (!masks) m.activation_bytes_16 -= L * (2 * s * H + a * s * s) + s * H;
  m.working_bytes_16 = 2 * (a * s * s + s * I + s * H);  // scores, the feed-forward's inner layer, the residual
  // The ops of src/nn/bert_model.cpp's training step, at the job's batch.
  const int64_t Bt = job.batch, T = job.batch * job.seq_len, sq = job.seq_len, d = b.hidden / b.heads;
  const int64_t heads_rows = Bt * b.heads, scores = heads_rows * sq * sq;
  auto k = [&m](std::string op, std::vector<int64_t> dims, double count = 1, bool input_grad = true) {
    m.kernels.push_back({std::move(op), std::move(dims), count, true, input_grad});
  };
  const double Lc = static_cast<double>(b.layers);
  k("embedding", {b.vocab, b.hidden, T}, 1, false);
  k("embedding", {b.positions, b.hidden, T}, 1, false);
  k("embedding", {b.type_vocab, b.hidden, T}, 1, false);
  k("layer_norm", {T, b.hidden});
  if (masks) k("dropout", {T * b.hidden});
  k("linear", {T, b.hidden, b.hidden}, 4 * Lc);  // query, key, value, attention output
  k("copy", {T * b.hidden}, Lc);                 // the heads' context back to [B, s, H]
  k("matmul", {heads_rows, sq, d, sq}, Lc);      // Q·Kᵀ
  k("scale", {scores}, Lc);                      // / sqrt(d)
  k("softmax", {heads_rows * sq, sq}, Lc);
  if (masks) k("dropout", {scores}, Lc);
  k("matmul", {heads_rows, sq, sq, d}, Lc);      // probabilities·V
  k("layer_norm", {T, b.hidden}, 2 * Lc);
  k("linear", {T, b.hidden, b.intermediate}, Lc);
  k("gelu", {T * b.intermediate}, Lc);
  k("linear", {T, b.intermediate, b.hidden}, Lc);
  if (masks) k("dropout", {T * b.hidden}, 2 * Lc);
  k("linear", {Bt, b.hidden, b.hidden});  // pooler
  k("tanh", {Bt * b.hidden});
  k("linear", {Bt, b.hidden, job.classes});
  k("cross_entropy", {Bt, job.classes});
  m.kernels.push_back({"grad_norm", {m.params}, 1, false, false});
  m.kernels.push_back({"adamw", {m.params}, 1, false, false});
  m.notes.push_back("activations per layer s*b*h*(34 + 5*a*s/h) bytes at 16 bits (Korthikanti et al. 2022)");
  m.notes.push_back("training FLOPs = 3 x forward (backward = 2 x forward); ~ 6 x params x tokens");
  return m;
}

BertLayout bert_layout_of(const std::string& size) {
  BertLayout b;
  for (const auto& p : kBertSizes) {
    if (size == p.name) {
      b.layers = p.layers, b.hidden = p.hidden, b.heads = p.heads, b.intermediate = p.intermediate;
      return b;
    }
  }
  std::string names;
  for (const auto& p : kBertSizes) names += std::string(names.empty() ? "" : ", ") + p.name;
  throw ConfigError("plan: bert size \"" + size + "\" is not one of " + names);
}

struct CnnLayout {
  bool resnet_stem = false;
  std::vector<int64_t> widths{32, 64, 128};
  std::vector<int64_t> blocks{1, 1, 1};
  bool residual = true;
  int64_t channels = 1;
  double dropout = 0;  ///< before the classifier (src/nn/cnn_model.cpp)
};

ModelShape cnn_shape(const std::string& name, const CnnLayout& c, const JobSpec& job) {
  ModelShape m;
  m.name = name;
  m.family = "cnn";
  int64_t hw = job.image_size;
  double flops = 0, act = 0;
  const int64_t Bt = job.batch;
  // The ops of src/nn/cnn_model.cpp's training step at the job's batch; identical ops share an entry.
  auto k = [&m](std::string op, std::vector<int64_t> dims, bool input_grad = true) {
    for (auto& e : m.kernels) {
      if (e.op == op && e.dims == dims && e.input_grad == input_grad) {
        e.count += 1;
        return;
      }
    }
    m.kernels.push_back({std::move(op), std::move(dims), 1, true, input_grad});
  };
  // Conv (no bias) + BatchNorm (+ ReLU); kept for backward: the conv output, the BatchNorm output and
  // the ReLU output (3 tensors of the output's size, 16-bit).
  auto conv_bn = [&](int64_t cin, int64_t cout, int64_t kk, int64_t stride, int64_t pad, int64_t& size, bool relu,
                     bool input_grad) {
    m.params += kk * kk * cin * cout + 2 * cout;
    m.buffers += 2 * cout + 1;
    const int64_t in_size = size;
    size = (size + 2 * pad - kk) / stride + 1;
    const double out = static_cast<double>(size) * static_cast<double>(size) * static_cast<double>(cout);
    flops += 2.0 * static_cast<double>(kk * kk * cin) * out;
    act += 3 * 2 * out;
    m.working_bytes_16 = std::max(m.working_bytes_16, 2 * 2 * out);
    k("conv2d", {Bt, cin, in_size, in_size, cout, kk, stride, pad}, input_grad);
    k("batch_norm", {Bt, cout, size, size});
    if (relu) k("relu", {Bt * cout * size * size});
  };
  const int64_t w0 = c.widths.front();
  if (c.resnet_stem) {
    conv_bn(c.channels, w0, 7, 2, 3, hw, true, false);
    k("max_pool", {Bt, w0, hw, hw});
    hw = (hw + 2 - 3) / 2 + 1;  // max pool 3x3, stride 2, padding 1
  } else {
    conv_bn(c.channels, w0, 3, 1, 1, hw, true, false);
  }
  int64_t in = w0;
  for (std::size_t s = 0; s < c.widths.size(); ++s) {
    for (int64_t b = 0; b < c.blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      const int64_t out = c.widths[s];
      int64_t block_in = hw;
      conv_bn(in, out, 3, stride, 1, hw, true, true);
      conv_bn(out, out, 3, 1, 1, hw, false, true);
      if (c.residual && (stride != 1 || in != out)) conv_bn(in, out, 1, stride, 0, block_in, false, true);
      if (c.residual) k("add", {Bt * out * hw * hw});
      k("relu", {Bt * out * hw * hw});
      in = out;
    }
  }
  k("mean_pool", {Bt, in, hw, hw});
  if (c.dropout > 0) k("dropout", {Bt * in});
  k("linear", {Bt, in, job.classes});
  k("cross_entropy", {Bt, job.classes});
  m.params += in * job.classes + job.classes;
  m.kernels.push_back({"grad_norm", {m.params}, 1, false, false});
  m.kernels.push_back({"adamw", {m.params}, 1, false, false});
  m.forward_flops = flops + 2.0 * static_cast<double>(in * job.classes);
  m.activation_bytes_16 = act;
  m.notes.push_back("conv FLOPs 2*k*k*c_in*c_out*h_out*w_out; BatchNorm and ReLU counted as memory, not FLOPs");
  m.notes.push_back("image " + std::to_string(job.image_size) + "x" + std::to_string(job.image_size) + ", " +
                    std::to_string(c.channels) + " channel(s)");
  return m;
}

/// Bag models over `features` inputs: an EmbeddingBag (sum over the text's non-zero features)
/// into `widths`, then dense layers.
ModelShape bag_shape(const std::string& name, const std::string& family, std::vector<int64_t> widths, bool layer_norm,
                     double dropout, const JobSpec& job) {
  ModelShape m;
  m.name = name;
  m.family = family;
  m.sparse_embedding = true;
  m.sparse_tables = 1;
  const double nnz = static_cast<double>(job.seq_len);
  if (family == "linear") widths = {job.classes};
  m.embedding_params = job.features * widths.front();
  // mlp's table has a bias (embedding_bias), linear's is the model's bias; embedbag's has none.
  m.params = m.embedding_params + (family == "embedbag" ? 0 : widths.front());
  double flops = 2 * nnz * static_cast<double>(widths.front());
  double act = 0;
  for (std::size_t k = 1; k < widths.size(); ++k) {
    m.params += widths[k - 1] * widths[k] + widths[k];
    flops += 2.0 * static_cast<double>(widths[k - 1] * widths[k]);
  }
  if (layer_norm) {
    for (const auto w : widths) m.params += 2 * w;
  }
  if (family != "linear") {
    m.params += widths.back() * job.classes + job.classes;
    flops += 2.0 * static_cast<double>(widths.back() * job.classes);
  }
  for (const auto w : widths) act += 3 * 2 * static_cast<double>(w);  // pre-activation, activation, dropout out
  m.forward_flops = flops;
  m.activation_bytes_16 = act;
  m.working_bytes_16 = 2 * 2 * static_cast<double>(*std::max_element(widths.begin(), widths.end()));
  // The ops of a training step (src/nn/mlp_model.cpp, embedbag_model.cpp, linear_model.cpp) at the
  // job's batch: the sparse first layer, then dense layers; AdamW updates the dense parameters and
  // the table rows the batch touched.
  const int64_t Bt = job.batch;
  const int64_t touched = rows_touched(job);
  m.kernels.push_back({"embedding_bag", {job.features, widths.front(), Bt, job.seq_len, touched}, 1, true, false});
  if (family != "linear") {
    for (std::size_t k = 0; k < widths.size(); ++k) {
      if (k > 0) m.kernels.push_back({"linear", {Bt, widths[k - 1], widths[k]}, 1, true, true});
      // mlp: every layer (the table's sum included) is activated, then dropped out; embedbag: the
      // pooled bag goes on as it is, and its optional hidden layer is activated; dropout once, last.
      if (family == "mlp" || k > 0) m.kernels.push_back({"relu", {Bt * widths[k]}, 1, true, true});
      if (dropout > 0 && (family == "mlp" || k + 1 == widths.size())) {
        m.kernels.push_back({"dropout", {Bt * widths[k]}, 1, true, true});
      }
    }
    m.kernels.push_back({"linear", {Bt, widths.back(), job.classes}, 1, true, true});
  }
  m.kernels.push_back({"cross_entropy", {Bt, job.classes}, 1, true, true});
  // The optimizer sees the reduced gradient: with several ranks, the union of their rows.
  const int64_t reduced = std::min<int64_t>(static_cast<int64_t>(std::max(1, job.ranks)) * touched, job.features);
  const int64_t dense = m.params - m.embedding_params;
  m.kernels.push_back({"grad_norm", {dense + reduced * widths.front()}, 1, false, false});
  if (dense > 0) m.kernels.push_back({"adamw", {dense}, 1, false, false});
  m.kernels.push_back({"adamw_rows", {job.features, widths.front(), reduced}, 1, false, false});
  m.notes.push_back("bag input: " + std::to_string(job.features) + " features, " + std::to_string(job.seq_len) +
                    " non-zero per text (--features, --seq-len); only touched rows get gradients: " +
                    std::to_string(touched) + " a batch (" +
                    (job.rows_per_batch > 0 ? std::string("--rows-per-batch")
                                            : std::string("at most; --rows-per-batch gives the data's own")) +
                    ")");
  return m;
}

const nlohmann::json& field(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNull;
  return j.is_object() && j.contains(key) ? j.at(key) : kNull;
}

int64_t int_or(const nlohmann::json& params, const char* key, int64_t fallback, const std::string& where) {
  const auto& v = field(params, key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw ConfigError(where + ": model.params." + key + " must be a non-negative integer, got " + v.dump());
  }
  return v.get<int64_t>();
}

std::vector<int64_t> list_or(const nlohmann::json& params, const char* key, std::vector<int64_t> fallback,
                             const std::string& where) {
  const auto& v = field(params, key);
  if (v.is_null()) return fallback;
  if (v.is_number_integer()) return {v.get<int64_t>()};
  if (!v.is_array() || v.empty()) {
    throw ConfigError(where + ": model.params." + key + " must be a list of positive integers, got " + v.dump());
  }
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<int64_t>() < 1) {
      throw ConfigError(where + ": model.params." + key + " must be a list of positive integers, got " + v.dump());
    }
    out.push_back(e.get<int64_t>());
  }
  return out;
}

}  // namespace

int64_t rows_touched(const JobSpec& job) {
  const int64_t bound = std::min<int64_t>(job.batch * job.seq_len, job.features);
  return job.rows_per_batch > 0 ? std::min<int64_t>(job.rows_per_batch, bound) : bound;
}

std::vector<std::string> model_presets() {
  std::vector<std::string> out;
  for (const auto& p : kBertSizes) out.push_back(std::string("bert-") + p.name);
  for (const char* n : {"resnet18", "cnn-small", "mlp", "embedbag", "linear"}) out.emplace_back(n);
  return out;
}

ModelShape preset_shape(const std::string& preset, const JobSpec& job) {
  nlohmann::json spec;
  const auto names = model_presets();
  const bool known = std::find(names.begin(), names.end(), preset) != names.end();
  if (known && preset.rfind("bert-", 0) == 0) {
    spec = {{"family", "bert"}, {"params", {{"preset", preset.substr(5)}}}};
  } else if (preset == "resnet18") {
    spec = {{"family", "cnn"}, {"params", {{"preset", "resnet18"}}}};
  } else if (preset == "cnn-small") {
    spec = {{"family", "cnn"}, {"params", {{"preset", "small"}}}};
  } else if (preset == "mlp") {
    spec = {{"family", "mlp"}, {"params", {{"hidden", {512}}}}};  // the seed recipe's MLP 512
  } else if (preset == "embedbag") {
    spec = {{"family", "embedbag"}, {"params", nlohmann::json::object()}};
  } else if (preset == "linear") {
    spec = {{"family", "linear"}, {"params", nlohmann::json::object()}};
  } else {
    std::string names;
    for (const auto& n : model_presets()) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("plan: --model \"" + preset + "\" is not a preset (" + names +
                      "), a run config (.yaml) or an artifact directory (holding kiln.json)");
  }
  ModelShape m = spec_shape(spec, job, "preset " + preset);
  m.name = preset;
  return m;
}

ModelShape spec_shape(const nlohmann::json& model_spec, const JobSpec& job_in, const std::string& where) {
  JobSpec job = job_in;
  const auto& fam = field(model_spec, "family");
  if (!fam.is_string()) throw ConfigError(where + ": model.family is missing; give one of bert, cnn, mlp, embedbag, linear");
  const std::string family = fam.get<std::string>();
  const nlohmann::json& params = field(model_spec, "params");
  const std::string name = where;
  if (family == "bert") {
    const auto& size = field(params, "preset");
    BertLayout b = bert_layout_of(size.is_string() ? size.get<std::string>() : "base");
    b.vocab = int_or(params, "vocab_size", job.vocab_size, where);
    b.hidden = int_or(params, "hidden_size", b.hidden, where);
    b.layers = int_or(params, "num_hidden_layers", b.layers, where);
    b.heads = int_or(params, "num_attention_heads", b.heads, where);
    b.intermediate = int_or(params, "intermediate_size", b.intermediate, where);
    b.positions = int_or(params, "max_position_embeddings", b.positions, where);
    b.type_vocab = int_or(params, "type_vocab_size", b.type_vocab, where);
    const auto& pre = field(params, "pre_ln");
    b.pre_ln = pre.is_boolean() && pre.get<bool>();
    return bert_shape(name, b, job);
  }
  if (family == "cnn") {
    CnnLayout c;
    const auto& p = field(params, "preset");
    const std::string preset = p.is_string() ? p.get<std::string>() : "small";
    if (preset == "resnet18") {
      c.resnet_stem = true, c.widths = {64, 128, 256, 512}, c.blocks = {2, 2, 2, 2}, c.channels = 3;
    } else if (preset != "small") {
      throw ConfigError(where + ": model.params.preset must be small or resnet18 for the cnn family, got \"" + preset + "\"");
    }
    c.widths = list_or(params, "widths", c.widths, where);
    c.blocks = list_or(params, "blocks", c.blocks, where);
    if (c.widths.size() != c.blocks.size()) {
      throw ConfigError(where + ": model.params.blocks must have one entry per entry of model.params.widths");
    }
    const auto& r = field(params, "residual");
    if (r.is_boolean()) c.residual = r.get<bool>();
    c.channels = int_or(params, "channels", c.channels, where);
    const auto& dr = field(params, "dropout");
    if (dr.is_number()) c.dropout = dr.get<double>();
    if (job.image_size == 0) job.image_size = c.resnet_stem ? 224 : 28;
    return cnn_shape(name, c, job);
  }
  if (family == "mlp" || family == "embedbag" || family == "linear") {
    std::vector<int64_t> widths{1};
    bool layer_norm = false;
    // The families' default dropout (src/nn/mlp_model.cpp, embedbag_model.cpp); linear has none.
    double dropout = family == "mlp" ? 0.2 : 0.0;
    const auto& d = field(params, "dropout");
    if (d.is_number() && family != "linear") dropout = d.get<double>();
    if (family == "mlp") {
      widths = list_or(params, "hidden", {256}, where);
      const auto& ln = field(params, "layer_norm");
      layer_norm = ln.is_boolean() && ln.get<bool>();
    } else if (family == "embedbag") {
      widths = {int_or(params, "dim", 100, where)};
      const int64_t hidden = int_or(params, "hidden", 0, where);
      if (hidden > 0) widths.push_back(hidden);
    }
    return bag_shape(name, family, widths, layer_norm, dropout, job);
  }
  throw ConfigError(where + ": kiln plan does not know the model family \"" + family +
                    "\"; it estimates bert, cnn, mlp, embedbag and linear");
}

ModelShape resolve_model(const std::string& model, JobSpec& job) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool dir = fs::is_directory(model, ec);
  const bool yaml = model.size() > 5 && (model.substr(model.size() - 5) == ".yaml" || model.substr(model.size() - 4) == ".yml");
  if (!dir && !yaml) return preset_shape(model, job);
  if (dir) {
    const fs::path manifest = fs::path(model) / "kiln.json";
    std::ifstream in(manifest);
    if (!in) throw DataError(manifest.string() + ": missing; --model takes a preset name, a run config (.yaml) or an artifact directory");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
      throw DataError(manifest.string() + ": not valid JSON; re-save the artifact with kiln train");
    }
    const auto& labels = field(j, "labels");
    if (labels.is_array() && !labels.empty()) job.classes = static_cast<int64_t>(labels.size());
    const auto& input_dim = field(j, "input_dim");  // format 1
    if (input_dim.is_number_integer()) job.features = input_dim.get<int64_t>();
    nlohmann::json spec = field(j, "model");
    double pixels = 0;  // C x H x W of an image model's input
    for (const auto& t : field(j, "inputs")) {
      const auto& v = field(t, "vocab_size");
      const auto& n = field(t, "name");
      const auto& shape = field(t, "shape");
      if (n.is_string() && n.get<std::string>() == "pixel_values" && shape.is_array() && shape.size() == 4 &&
          shape[1].is_number_integer() && shape[2].is_number_integer() && shape[3].is_number_integer()) {
        // pixel_values [batch, C, H, W]: the channels the first conv reads and the size it sees.
        if (spec.is_object() && spec.contains("params") && spec["params"].is_object()) {
          spec["params"]["channels"] = shape[1];
        }
        if (job.image_size == 0) job.image_size = shape[2].get<int64_t>();
        pixels = shape[1].get<double>() * shape[2].get<double>() * shape[3].get<double>();
        continue;
      }
      if (!v.is_number_integer() || !n.is_string()) continue;
      if (n.get<std::string>() == "input_ids") job.vocab_size = v.get<int64_t>();
      else job.features = v.get<int64_t>();
    }
    ModelShape m = spec_shape(spec, job, manifest.string());
    m.name = model;
    if (m.family == "cnn" && pixels > 0) {
      // The training set is encoded once and held as float32 pixel_values (src/pipeline/pipeline.cpp).
      job.data_bytes_per_sample = 4.0 * pixels;
      return m;
    }
    // The training data a job of this artifact holds: its texts (as read, and the copy with known
    // labels) and their encoding (BERT: ids, mask and type ids as int64; bag models: an id and a
    // weight per non-zero feature).
    const auto& text_length = field(field(field(j, "data_profile"), "text_length"), "mean");
    if (text_length.is_number()) {
      const double encoded = m.family == "bert" ? 3.0 * 8.0 * static_cast<double>(job.seq_len)
                                                : 12.0 * static_cast<double>(job.seq_len);
      job.data_bytes_per_sample = 2.0 * text_length.get<double>() + encoded;
    }
    return m;
  }
  if (!fs::exists(model, ec)) throw DataError(model + ": no such file; give a run config that exists or a preset name");
  const nlohmann::json config = core::load_yaml_file(model);
  const auto& feat = field(config, "featurizer");
  const auto& max_features = field(feat, "max_features");
  if (max_features.is_number_integer()) job.features = max_features.get<int64_t>();
  ModelShape m = spec_shape(field(config, "model"), job, model);
  m.name = model;
  return m;
}

}  // namespace kiln::plan
