// ONNX exporters of the image families.
//   cnn: "pixel_values" float32 [batch, channels, height, width] → each Conv+BN as one Conv with the
//        BatchNorm folded in (kiln::nn::fold_conv_bn), Relu, MaxPool (resnet18 stem), residual Add,
//        GlobalAveragePool, Flatten, Gemm (fc).
//   multimodal: "features" (the text bag, dense) or BERT's input_ids/attention_mask/token_type_ids,
//        and "pixel_values" → the text side (bag: MatMul with the embedding table, mean pooling; bert:
//        the encoder, every token's hidden state projected, or the pooler's [CLS] vector), the image side (the cnn trunk, its grid as patches, image_proj),
//        and the fusion: cross attention (heads 1: MatMul/Softmax/MatMul; heads > 1: torch's
//        MultiheadAttention split into heads, out projection, residual and LayerNorm), concat or gated.
#include <cmath>

#include "kiln/core/error.h"
#include "kiln/nn/conv_kernel.h"
#include "onnx_parts.h"

namespace kiln::onnx {
namespace {

std::map<std::string, torch::nn::Module*> modules_of(nn::Model& model) {
  std::map<std::string, torch::nn::Module*> out;
  for (const auto& item : model.named_modules("", false)) out[item.key()] = item.value().get();
  return out;
}

// relu?(bn(conv(x))) as one Conv (BN folded) and an optional Relu. `conv`, `bn`: module names.
std::string conv_bn(GraphBuilder& g, const std::map<std::string, torch::nn::Module*>& mods, const std::string& x,
                    const std::string& conv, const std::string& bn, bool relu) {
  const auto c = mods.find(conv), b = mods.find(bn);
  if (c == mods.end() || b == mods.end() || !c->second->as<torch::nn::Conv2d>() || !b->second->as<torch::nn::BatchNorm2d>()) {
    throw ConfigError("onnx export: the cnn has no convolution '" + conv + "' followed by BatchNorm '" + bn + "'");
  }
  const auto conv_m = torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(c->second->shared_from_this()));
  const auto bn_m = torch::nn::BatchNorm2d(std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(b->second->shared_from_this()));
  const auto [w, bias] = nn::fold_conv_bn(conv_m, bn_m);
  const auto& o = conv_m->options;
  const auto* pad = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  if (!pad) throw ConfigError("onnx export: convolution '" + conv + "' has no explicit padding");
  const int64_t ph = (**pad)[0], pw = (**pad)[1];
  auto y = g.node("Conv", {x, g.constant(conv + ".weight_folded", w), g.constant(conv + ".bias_folded", bias)}, conv,
                  {Attribute::integers("kernel_shape", {w.size(2), w.size(3)}), Attribute::integers("pads", {ph, pw, ph, pw}),
                   Attribute::integers("strides", {(*o.stride())[0], (*o.stride())[1]}),
                   Attribute::integers("dilations", {(*o.dilation())[0], (*o.dilation())[1]}),
                   Attribute::integer("group", o.groups())});
  return relu ? g.node("Relu", {y}, conv + ".relu") : y;
}

// The cnn trunk (stem + stages) of the model's modules under `prefix` ("" or "image."): the last
// feature grid [batch, C, h, w].
std::string cnn_trunk(GraphBuilder& g, nn::Model& model, const Weights& w, const std::string& prefix,
                      const std::string& preset, bool residual, const std::string& x) {
  const auto mods = modules_of(model);
  auto h = conv_bn(g, mods, x, prefix + "conv1", prefix + "bn1", true);
  if (preset == "resnet18") {
    h = g.node("MaxPool", {h}, prefix + "maxpool",
               {Attribute::integers("kernel_shape", {3, 3}), Attribute::integers("pads", {1, 1, 1, 1}),
                Attribute::integers("strides", {2, 2})});
  }
  for (int s = 1; w.has(prefix + "layer" + std::to_string(s) + ".0.conv1.weight"); ++s) {
    for (int b = 0;; ++b) {
      const std::string p = prefix + "layer" + std::to_string(s) + "." + std::to_string(b) + ".";
      if (!w.has(p + "conv1.weight")) break;
      auto y = conv_bn(g, mods, h, p + "conv1", p + "bn1", true);
      y = conv_bn(g, mods, y, p + "conv2", p + "bn2", false);
      if (residual) {
        const auto shortcut = w.has(p + "downsample.0.weight")
                                  ? conv_bn(g, mods, h, p + "downsample.0", p + "downsample.1", false)
                                  : h;
        y = g.node("Add", {y, shortcut}, p + "residual");
      }
      h = g.node("Relu", {y}, p + "out");
    }
  }
  return h;
}

void pixel_input(GraphBuilder& g, const Weights& w, const std::string& first_conv) {
  g.input("pixel_values", kFloat, {{0, "batch"}, {w.at(first_conv).size(1), ""}, {0, "height"}, {0, "width"}});
}

}  // namespace

std::string export_cnn(GraphBuilder& g, nn::Model& model, const nlohmann::json& p) {
  Weights w(model);
  pixel_input(g, w, "conv1.weight");
  const auto grid = cnn_trunk(g, model, w, "", p.at("preset").get<std::string>(), p.at("residual").get<bool>(), "pixel_values");
  auto pooled = g.node("Flatten", {g.node("GlobalAveragePool", {grid}, "pool")}, "pooled", {Attribute::integer("axis", 1)});
  if (p.value("dropout", 0.0) < 0) throw ConfigError("onnx export: cnn dropout must be >= 0");
  return g.node("Gemm", {pooled, g.constant("fc.weight", w.at("fc.weight")), g.constant("fc.bias", w.at("fc.bias"))}, "logits",
                {Attribute::integer("transB", 1)});
}

std::string export_multimodal(GraphBuilder& g, nn::Model& model, const nlohmann::json& p) {
  Weights w(model);
  nn::BertModel* bert = nullptr;
  for (const auto& item : model.named_children()) {
    if (item.key() == "text") bert = dynamic_cast<nn::BertModel*>(item.value().get());
  }
  if (!w.has("text_embedding.weight") && !bert) {
    throw ConfigError("onnx export: this multimodal model's text side is neither a bag of features (text_embedding.weight) "
                      "nor a BERT (text.*); it has no ONNX form in this Kiln");
  }
  const int64_t dim = p.at("dim").get<int64_t>(), heads = p.at("heads").get<int64_t>();
  const std::string fusion = p.at("fusion").get<std::string>();
  // Text: queries [B, L, d] for cross attention (L = 1 for the bag), a pooled vector [B, d] otherwise.
  std::string text, queries;
  BertEncoderGraph enc;
  const auto axis1 = g.ints("axis1u", {1});
  if (bert) {
    bert_inputs(g);
    pixel_input(g, w, "image.conv1.weight");
    enc = bert_encoder(g, w, bert->options(), "text.");
    if (fusion == "cross_attention") {
      queries = dense(g, w, enc.hidden, "text_proj");  // every token's last hidden state, projected
    } else {                                          // BERT's pooler output ([CLS]), projected
      auto first = g.node("Gather", {enc.hidden, enc.zero_i64}, "text.cls", {Attribute::integer("axis", 1)});
      text = dense(g, w, g.node("Tanh", {dense(g, w, first, "text.pooler.dense")}, "text.pooled"), "text_proj");
    }
  } else {
    const auto& table = w.at("text_embedding.weight");
    bag_input(g, table.size(0));
    pixel_input(g, w, "image.conv1.weight");
    // The bag's weighted mean of embedding rows (an empty bag divides by 1).
    auto sum = g.node("MatMul", {"features", g.constant("text_embedding.weight", table)}, "text.sum");
    auto total = g.node("ReduceSum", {"features", g.ints("axis1", {1})}, "text.total", {Attribute::integer("keepdims", 1)});
    auto safe = g.node("Where", {g.node("Equal", {total, g.scalar("text.zero", 0.0f)}, "text.empty"), g.scalar("text.one", 1.0f), total},
                       "text.divisor");
    text = g.node("Div", {sum, safe}, "text");  // [B, d]
    queries = g.node("Unsqueeze", {text, axis1}, "text.seq");  // [B, 1, d]
  }
  // Image: the trunk's grid as patches [B, h*w, C] → image_proj → [B, hw, d].
  const auto grid = cnn_trunk(g, model, w, "image.", p.at("image_preset").get<std::string>(), true, "pixel_values");
  auto flat = g.node("Reshape", {grid, g.ints("grid.shape", {0, 0, -1})}, "grid.flat");
  auto patches = dense(g, w, g.node("Transpose", {flat}, "patches.raw", {Attribute::integers("perm", {0, 2, 1})}), "image_proj");
  std::string fused;
  if (fusion == "cross_attention") {
    std::string attended;  // [B, L, d]
    if (heads > 1) {
      // torch.nn.MultiheadAttention(queries, patches, patches), then LayerNorm(queries + attended).
      const int64_t dh = dim / heads;
      const auto& in_w = w.at("fusion.attention.in_proj_weight");  // [3 d, d]: q, k, v stacked
      const auto& in_b = w.at("fusion.attention.in_proj_bias");
      const auto split = g.ints("fusion.heads.shape", {0, 0, heads, dh});
      // The part-th projection of x, split into heads and transposed by perm.
      const auto project = [&](const std::string& x, int64_t part, const std::string& name, const std::vector<int64_t>& perm) {
        const auto wt = g.constant("fusion." + name + ".weight_t", in_w.slice(0, part * dim, (part + 1) * dim).t().contiguous());
        const auto b = g.constant("fusion." + name + ".bias", in_b.slice(0, part * dim, (part + 1) * dim).contiguous());
        auto y = g.node("Add", {g.node("MatMul", {x, wt}, "fusion." + name + ".matmul"), b}, "fusion." + name);
        return g.node("Transpose", {g.node("Reshape", {y, split}, "fusion." + name + ".split")}, "fusion." + name + ".heads",
                      {Attribute::integers("perm", perm)});
      };
      auto q = project(queries, 0, "q", {0, 2, 1, 3});  // [B, H, L, dh]
      auto kt = project(patches, 1, "k", {0, 2, 3, 1});  // [B, H, dh, hw]
      auto v = project(patches, 2, "v", {0, 2, 1, 3});   // [B, H, hw, dh]
      auto scores = g.node("Div", {g.node("MatMul", {q, kt}, "fusion.scores.raw"),
                                   g.scalar("fusion.scale", static_cast<float>(std::sqrt(static_cast<double>(dh))))},
                           "fusion.scores");
      auto probs = g.node("Softmax", {scores}, "fusion.probs", {Attribute::integer("axis", -1)});
      auto context = g.node("Transpose", {g.node("MatMul", {probs, v}, "fusion.context.heads")}, "fusion.context.t",
                            {Attribute::integers("perm", {0, 2, 1, 3})});
      context = g.node("Reshape", {context, g.ints("fusion.merge.shape", {0, 0, dim})}, "fusion.context");  // [B, L, d]
      auto out = dense(g, w, context, "fusion.attention.out_proj");
      attended = layer_norm(g, w, g.node("Add", {queries, out}, "fusion.residual"), "fusion.norm", 1e-5);
    } else {
      // The flow's softmax(q k^T / sqrt(dim)) v, bias-free projections.
      auto q = dense(g, w, queries, "fusion.q_proj");
      auto kt = g.node("Transpose", {dense(g, w, patches, "fusion.k_proj")}, "fusion.kt", {Attribute::integers("perm", {0, 2, 1})});
      auto v = dense(g, w, patches, "fusion.v_proj");
      auto scores = g.node("Div", {g.node("MatMul", {q, kt}, "fusion.scores.raw"),
                                   g.scalar("fusion.scale", static_cast<float>(std::sqrt(static_cast<double>(dim))))},
                           "fusion.scores");
      auto probs = g.node("Softmax", {scores}, "fusion.probs", {Attribute::integer("axis", -1)});
      attended = g.node("MatMul", {probs, v}, "fusion.context");
    }
    // The bag's one query squeezed out; BERT's tokens averaged over the attended ones.
    fused = bert ? masked_mean(g, attended, enc.mask_float, "fused") : g.node("Squeeze", {attended, axis1}, "fused");
  } else {
    auto image = g.node("ReduceMean", {patches}, "image", {Attribute::integers("axes", {1}), Attribute::integer("keepdims", 0)});
    auto both = g.node("Concat", {text, image}, "text_image", {Attribute::integer("axis", 1)});
    if (fusion == "concat") {
      fused = both;
    } else {
      auto gate = g.node("Sigmoid", {dense(g, w, both, "gate")}, "gate.g");
      auto keep = g.node("Mul", {gate, text}, "gate.text");
      auto rest = g.node("Mul", {g.node("Sub", {g.scalar("gate.one", 1.0f), gate}, "gate.inv"), image}, "gate.image");
      fused = g.node("Add", {keep, rest}, "fused");
    }
  }
  return g.node("Identity", {dense(g, w, fused, "output")}, "logits");
}

}  // namespace kiln::onnx
