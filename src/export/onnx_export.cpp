#include "kiln/export/onnx.h"

#include <cmath>
#include <functional>
#include <limits>

#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "onnx_parts.h"

namespace kiln::onnx {

Weights::Weights(nn::Model& model) {
  for (const auto& p : model.named_parameters()) map_[p.key()] = p.value().detach().to(torch::kCPU);
  for (const auto& b : model.named_buffers()) map_[b.key()] = b.value().detach().to(torch::kCPU);
}

const torch::Tensor& Weights::at(const std::string& n) const {
  const auto it = map_.find(n);
  if (it == map_.end()) throw ConfigError("onnx export: the model has no tensor '" + n + "'");
  return it->second;
}

// y = x W^T + b, with W stored transposed as MatMul's second input.
std::string dense(GraphBuilder& g, const Weights& w, const std::string& x, const std::string& module) {
  const auto wt = g.constant(module + ".weight_t", w.at(module + ".weight").t().contiguous());
  auto y = g.node("MatMul", {x, wt}, module + ".matmul");
  if (w.has(module + ".bias")) y = g.node("Add", {y, g.constant(module + ".bias", w.at(module + ".bias"))}, module + ".out");
  return y;
}

std::string activation(GraphBuilder& g, const std::string& x, const std::string& act, const std::string& name) {
  if (act == "relu") return g.node("Relu", {x}, name);
  if (act == "tanh") return g.node("Tanh", {x}, name);
  if (act == "gelu" || act == "gelu_python") {  // exact: 0.5 x (1 + erf(x / sqrt 2))
    auto e = g.node("Erf", {g.node("Div", {x, g.scalar(name + ".sqrt2", static_cast<float>(std::sqrt(2.0)))}, name + ".scaled")},
                    name + ".erf");
    auto one = g.node("Add", {e, g.scalar(name + ".one", 1.0f)}, name + ".onep");
    return g.node("Mul", {g.node("Mul", {x, one}, name + ".xmul"), g.scalar(name + ".half", 0.5f)}, name);
  }
  throw ConfigError("onnx export: activation '" + act + "' has no ONNX form in this Kiln (supported: relu, tanh, gelu)");
}

// LayerNormalization over the last axis, from opset-14 ops.
std::string layer_norm(GraphBuilder& g, const Weights& w, const std::string& x, const std::string& module, double eps) {
  const std::vector<Attribute> last = {Attribute::integers("axes", {-1})};
  auto mean = g.node("ReduceMean", {x}, module + ".mean", last);
  auto centered = g.node("Sub", {x, mean}, module + ".centered");
  auto var = g.node("ReduceMean", {g.node("Mul", {centered, centered}, module + ".sq")}, module + ".var", last);
  auto denom = g.node("Sqrt", {g.node("Add", {var, g.scalar(module + ".eps", static_cast<float>(eps))}, module + ".vareps")},
                      module + ".std");
  auto norm = g.node("Div", {centered, denom}, module + ".norm");
  auto scaled = g.node("Mul", {norm, g.constant(module + ".weight", w.at(module + ".weight"))}, module + ".scaled");
  return g.node("Add", {scaled, g.constant(module + ".bias", w.at(module + ".bias"))}, module + ".out");
}

void bert_inputs(GraphBuilder& g) {
  const std::vector<Dim> bl = {{0, "batch"}, {0, "sequence"}};
  g.input("input_ids", kInt64, bl);
  g.input("attention_mask", kInt64, bl);
  g.input("token_type_ids", kInt64, bl);
}

std::string masked_mean(GraphBuilder& g, const std::string& x, const std::string& mask_float, const std::string& name) {
  auto m = g.node("Unsqueeze", {mask_float, g.ints(name + ".mask.last", {-1})}, name + ".mask.weights");
  const auto seq_axis = g.ints(name + ".sequence.axis", {1});
  auto sum = g.node("ReduceSum", {g.node("Mul", {x, m}, name + ".masked"), seq_axis}, name + ".masked.sum",
                    {Attribute::integer("keepdims", 0)});
  auto count = g.node("ReduceSum", {m, seq_axis}, name + ".mask.count", {Attribute::integer("keepdims", 0)});
  count = g.node("Max", {count, g.scalar(name + ".count.min", 1.0f)}, name + ".mask.count.clamped");
  return g.node("Div", {sum, count}, name);
}

BertEncoderGraph bert_encoder(GraphBuilder& g, const Weights& w, const nn::BertOptions& o, const std::string& prefix) {
  const nn::BertConfig& c = o.config;
  const int64_t H = c.hidden_size, heads = c.num_attention_heads, d = H / heads;
  const std::string& P = prefix;
  const std::vector<Attribute> axis0 = {Attribute::integer("axis", 0)};
  const auto embedding = [&](const std::string& table, const std::string& ids, const std::string& name) {
    return g.node("Gather", {g.constant(P + table, w.at(P + table)), ids}, P + name, axis0);
  };
  auto x = embedding("embeddings.word_embeddings.weight", "input_ids", "embeddings.words");
  x = g.node("Add", {x, embedding("embeddings.token_type_embeddings.weight", "token_type_ids", "embeddings.types")},
             P + "embeddings.wt");
  // positions 0..L-1: Range(0, Shape(input_ids)[1], 1)
  auto shape = g.node("Shape", {"input_ids"}, P + "ids.shape");
  const auto one = g.constant(P + "one_i64", torch::tensor(int64_t{1}));
  const auto zero = g.constant(P + "zero_i64", torch::tensor(int64_t{0}));
  auto length = g.node("Gather", {shape, one}, P + "ids.length", axis0);
  auto positions = g.node("Range", {zero, length, one}, P + "positions");
  x = g.node("Add", {x, embedding("embeddings.position_embeddings.weight", positions, "embeddings.positions")},
             P + "embeddings.sum");
  x = layer_norm(g, w, x, P + "embeddings.LayerNorm", c.layer_norm_eps);
  // additive mask [B, 1, 1, L]: (1 - mask) * lowest
  auto maskf = g.node("Cast", {"attention_mask"}, P + "mask.float", {Attribute::integer("to", kFloat)});
  auto inv = g.node("Sub", {g.scalar(P + "mask.one", 1.0f), maskf}, P + "mask.inverted");
  auto additive = g.node("Mul", {inv, g.scalar(P + "mask.lowest", std::numeric_limits<float>::lowest())}, P + "mask.additive");
  additive = g.node("Unsqueeze", {additive, g.ints(P + "mask.axes", {1, 2})}, P + "mask.4d");
  const auto split_shape = g.ints(P + "heads.shape", {0, 0, heads, d});
  const auto merge_shape = g.ints(P + "merge.shape", {0, 0, H});
  const auto scale = g.scalar(P + "attention.scale", static_cast<float>(std::sqrt(static_cast<double>(d))));
  const double s = o.residual_scale;
  const auto residual = [&](const std::string& in, const std::string& branch, const std::string& name) {
    const std::string scaled = s == 1.0 ? in : g.node("Mul", {in, g.scalar(name + ".scale", static_cast<float>(s))}, name + ".scaled");
    return g.node("Add", {branch, scaled}, name);
  };
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = P + "encoder.layer." + std::to_string(i) + ".";
    const std::string in = o.pre_ln ? layer_norm(g, w, x, p + "attention.LayerNorm", c.layer_norm_eps) : x;
    auto heads_of = [&](const std::string& proj, const std::vector<int64_t>& perm) {
      auto y = g.node("Reshape", {dense(g, w, in, p + "attention.self." + proj), split_shape}, p + proj + ".heads");
      return g.node("Transpose", {y}, p + proj + ".t", {Attribute::integers("perm", perm)});
    };
    auto q = heads_of("query", {0, 2, 1, 3});
    auto k = heads_of("key", {0, 2, 3, 1});
    auto v = heads_of("value", {0, 2, 1, 3});
    auto scores = g.node("Div", {g.node("MatMul", {q, k}, p + "scores.raw"), scale}, p + "scores.scaled");
    auto probs = g.node("Softmax", {g.node("Add", {scores, additive}, p + "scores")}, p + "probs", {Attribute::integer("axis", -1)});
    auto context = g.node("Transpose", {g.node("MatMul", {probs, v}, p + "context.heads")}, p + "context.t",
                          {Attribute::integers("perm", {0, 2, 1, 3})});
    context = g.node("Reshape", {context, merge_shape}, p + "context");
    if (o.pre_ln) {  // a = x + attention(LN(x)); x = a + ffn(LN(a))
      auto a = residual(x, dense(g, w, context, p + "attention.output.dense"), p + "attention.residual");
      auto n = layer_norm(g, w, a, p + "intermediate.LayerNorm", c.layer_norm_eps);
      auto h = activation(g, dense(g, w, n, p + "intermediate.dense"), c.hidden_act, p + "intermediate.act");
      x = residual(a, dense(g, w, h, p + "output.dense"), p + "output.residual");
      continue;
    }
    auto a = layer_norm(g, w, residual(x, dense(g, w, context, p + "attention.output.dense"), p + "attention.residual"),
                        p + "attention.output.LayerNorm", c.layer_norm_eps);
    auto h = activation(g, dense(g, w, a, p + "intermediate.dense"), c.hidden_act, p + "intermediate.act");
    x = layer_norm(g, w, residual(a, dense(g, w, h, p + "output.dense"), p + "output.residual"), p + "output.LayerNorm",
                   c.layer_norm_eps);
  }
  if (o.pre_ln) x = layer_norm(g, w, x, P + "LayerNorm", c.layer_norm_eps);
  return {x, maskf, zero};
}

void bag_input(GraphBuilder& g, int64_t features) {
  g.input("features", kFloat, {{0, "batch"}, {features, ""}});
}

namespace {

std::string export_linear(GraphBuilder& g, nn::Model& model, const nlohmann::json&) {
  Weights w(model);
  const auto& table = w.at("embedding.weight");
  bag_input(g, table.size(0));
  auto y = g.node("MatMul", {"features", g.constant("embedding.weight", table)}, "scores");
  return g.node("Add", {y, g.constant("bias", w.at("bias"))}, "logits");
}

std::string export_mlp(GraphBuilder& g, nn::Model& model, const nlohmann::json& p) {
  Weights w(model);
  const auto& table = w.at("embedding.weight");
  bag_input(g, table.size(0));
  const auto hidden = p.at("hidden").get<std::vector<int64_t>>();
  const auto act = p.at("activation").get<std::string>();
  const bool norm = p.at("layer_norm").get<bool>(), residual = p.at("residual").get<bool>();
  auto finish = [&](std::string pre, std::size_t k) {
    if (norm) pre = layer_norm(g, w, pre, "norm" + std::to_string(k), 1e-5);
    return activation(g, pre, act, "act" + std::to_string(k));
  };
  auto h0 = g.node("MatMul", {"features", g.constant("embedding.weight", table)}, "embedding.sum");
  auto h = finish(g.node("Add", {h0, g.constant("embedding_bias", w.at("embedding_bias"))}, "embedding.out"), 0);
  for (std::size_t k = 1; k < hidden.size(); ++k) {
    auto f = finish(dense(g, w, h, "hidden" + std::to_string(k)), k);
    h = residual && hidden[k] == hidden[k - 1] ? g.node("Add", {h, f}, "residual" + std::to_string(k)) : f;
  }
  return g.node("Identity", {dense(g, w, h, "output")}, "logits");
}

std::string export_embedbag(GraphBuilder& g, nn::Model& model, const nlohmann::json& p) {
  Weights w(model);
  const auto& table = w.at("embedding.weight");
  bag_input(g, table.size(0));
  auto h = g.node("MatMul", {"features", g.constant("embedding.weight", table)}, "bag.sum");
  const auto pooling = p.at("pooling").get<std::string>();
  if (pooling != "sum") {
    // mean: / Σ w (per row), sqrtn: / sqrt(Σ w²); an empty row divides by 1.
    std::string total;
    if (pooling == "mean") {
      total = g.node("ReduceSum", {"features", g.ints("axis1", {1})}, "bag.total", {Attribute::integer("keepdims", 1)});
    } else {
      auto sq = g.node("Mul", {"features", "features"}, "bag.sq");
      total = g.node("Sqrt", {g.node("ReduceSum", {sq, g.ints("axis1", {1})}, "bag.sqsum", {Attribute::integer("keepdims", 1)})},
                     "bag.total");
    }
    auto zero = g.node("Equal", {total, g.scalar("bag.zero", 0.0f)}, "bag.empty");
    auto safe = g.node("Where", {zero, g.scalar("bag.one", 1.0f), total}, "bag.divisor");
    h = g.node("Div", {h, safe}, "bag.pooled");
  }
  if (w.has("hidden.weight")) h = activation(g, dense(g, w, h, "hidden"), p.at("activation").get<std::string>(), "hidden.act");
  return g.node("Identity", {dense(g, w, h, "output")}, "logits");
}

std::string export_bert(GraphBuilder& g, nn::Model& model, const nlohmann::json&) {
  auto* bert = dynamic_cast<nn::BertModel*>(&model);
  if (!bert) throw ConfigError("onnx export: the bert artifact's model is not a BertModel");
  const nn::BertOptions& o = bert->options();
  Weights w(model);
  bert_inputs(g);
  const BertEncoderGraph enc = bert_encoder(g, w, o, "");
  std::string pooled;
  if (o.pooling == nn::BertPooling::kCls) {
    auto first = g.node("Gather", {enc.hidden, enc.zero_i64}, "cls", {Attribute::integer("axis", 1)});
    pooled = g.node("Tanh", {dense(g, w, first, "pooler.dense")}, "pooled");
  } else {
    pooled = masked_mean(g, enc.hidden, enc.mask_float, "pooled");
  }
  return g.node("Identity", {dense(g, w, pooled, "classifier")}, "logits");
}

using Exporter = std::function<std::string(GraphBuilder&, nn::Model&, const nlohmann::json&)>;

const std::map<std::string, Exporter>& exporters() {
  static const std::map<std::string, Exporter> m = {
      {"bert", export_bert}, {"cnn", export_cnn},  {"embedbag", export_embedbag},
      {"linear", export_linear}, {"mlp", export_mlp}, {"multimodal", export_multimodal}};
  return m;
}

}  // namespace

void validate(const OnnxExportOptions& o) {
  if (o.opset < 14 || o.opset > 17) {
    throw ConfigError("onnx.opset (--opset) must be in [14, 17], got " + std::to_string(o.opset));
  }
}

std::vector<std::string> onnx_families() {
  std::vector<std::string> out;
  for (const auto& [n, e] : exporters()) out.push_back(n);
  return out;
}

std::string export_onnx(const artifact::Artifact& artifact, const OnnxExportOptions& options) {
  validate(options);
  const auto& family = artifact.manifest.model.family;
  const auto it = exporters().find(family);
  if (it == exporters().end()) {
    std::string known;
    for (const auto& n : onnx_families()) known += (known.empty() ? "" : ", ") + n;
    throw ConfigError("onnx export: family '" + family + "' has no ONNX exporter in this Kiln (known: " + known + ")");
  }
  const auto* ids = artifact.manifest.inputs.find(nn::kInputIds);
  if (ids && ids->shape.size() == 3) {
    throw ConfigError("onnx export: this artifact splits long texts into windows and averages their logits (featurizer "
                      "long_text: window), which the ONNX graph does not do; train with --long-text truncate to export");
  }
  GraphBuilder g;
  const auto logits = it->second(g, *artifact.model, artifact.manifest.model.params);
  g.output(logits, kFloat, {{0, "batch"}, {static_cast<int64_t>(artifact.manifest.labels.size()), ""}});
  nlohmann::json labels = artifact.manifest.labels;
  std::vector<std::pair<std::string, std::string>> meta = {
      {"kiln.family", family},
      {"kiln.labels", labels.dump()},
      {"kiln.temperature", std::to_string(artifact.manifest.temperature())},
      {"kiln.inputs", family == "bert" ? "input_ids, attention_mask, token_type_ids: int64 [batch, sequence]"
                      : family == "cnn" ? "pixel_values: float32 [batch, channels, height, width], normalized as the "
                                          "image preprocessor does"
                      : family == "multimodal"
                          ? "features: float32 [batch, features], the text preprocessor's bag as a dense row; "
                            "pixel_values: float32 [batch, channels, height, width]"
                          : "features: float32 [batch, features], the preprocessor's bag as a dense row"},
  };
  return g.model(options.opset, "kiln_" + family, meta);
}

std::map<std::string, torch::Tensor> onnx_inputs(const artifact::Artifact& artifact, const nn::Batch& batch) {
  std::map<std::string, torch::Tensor> out;
  if (batch.get(nn::kInputIds).defined()) {  // bert, or a multimodal model's BERT text side
    const auto ids = batch.at(nn::kInputIds).to(torch::kInt64);
    out["input_ids"] = ids;
    out["attention_mask"] = batch.at(nn::kAttentionMask).to(torch::kInt64);
    const auto types = batch.get(nn::kTokenTypeIds);
    out["token_type_ids"] = types.defined() ? types.to(torch::kInt64) : torch::zeros_like(ids);
  }
  if (batch.get(nn::kPixelValues).defined()) out["pixel_values"] = batch.at(nn::kPixelValues).to(torch::kFloat32);
  if (artifact.manifest.model.family == "cnn" || artifact.manifest.model.family == "bert" ||
      !batch.get(nn::kBagIndices).defined()) {
    return out;
  }
  const auto& idx = batch.at(nn::kBagIndices);
  const auto& off = batch.at(nn::kBagOffsets);
  const auto w = batch.get(nn::kBagWeights);
  const int64_t rows = off.size(0), nnz = idx.size(0);
  const auto params = artifact.model->named_parameters();
  const int64_t features =
      (params.contains("embedding.weight") ? params["embedding.weight"] : params["text_embedding.weight"]).size(0);
  auto dense = torch::zeros({rows, features}, torch::kFloat32);
  const auto ends = torch::cat({off.slice(0, 1), torch::full({1}, nnz, off.options())});
  const auto row_of = torch::repeat_interleave(torch::arange(rows, off.options()), ends - off);
  dense.index_put_({row_of, idx}, w.defined() ? w.to(torch::kFloat32) : torch::ones({nnz}), /*accumulate=*/true);
  out["features"] = dense;
  return out;
}

}  // namespace kiln::onnx
