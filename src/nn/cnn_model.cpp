#include "cnn_model.h"

#include <cmath>

#include "builtin_families.h"
#include "kiln/nn/dropout.h"
#include "kiln/nn/int8_linear.h"
#include "init.h"
#include "kiln/core/error.h"
#include "params.h"

namespace kiln::nn {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  auto c = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
  // Kaiming normal, fan_out, ReLU gain (torchvision's ResNet init).
  torch::NoGradGuard no_grad;
  c->weight.normal_(0.0, std::sqrt(2.0 / static_cast<double>(out * k * k)));
  return c;
}

torch::nn::BatchNorm2d bn(int64_t c) { return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(c)); }

}  // namespace

nlohmann::json cnn_default_params() {
  return {{"preset", "small"}, {"widths", nullptr}, {"blocks", nullptr}, {"residual", true}, {"dropout", 0.0}};
}

CnnParams parse_cnn_params(const nlohmann::json& params) {
  const ParamReader reader("cnn", params, cnn_default_params());
  CnnParams out;
  out.preset = reader.choice("preset", {"small", "resnet18"});
  if (out.preset == "small") out.widths = {32, 64, 128}, out.blocks = {1, 1, 1};
  else out.widths = {64, 128, 256, 512}, out.blocks = {2, 2, 2, 2};
  if (!reader.is_null("widths")) out.widths = reader.integer_list("widths", 1);
  if (!reader.is_null("blocks")) out.blocks = reader.integer_list("blocks", 1);
  if (out.widths.size() != out.blocks.size()) {
    throw ConfigError(param_field("blocks") + " must have one entry per stage of " + param_field("widths") + " (" +
                      std::to_string(out.widths.size()) + "), got " + std::to_string(out.blocks.size()) +
                      "; give both or neither");
  }
  out.residual = reader.boolean("residual");
  out.dropout = reader.probability("dropout");
  return out;
}

CnnBlockImpl::CnnBlockImpl(int64_t in, int64_t out, int64_t stride, bool residual) : residual_(residual) {
  conv1_ = register_module("conv1", conv(in, out, 3, stride, 1));
  bn1_ = register_module("bn1", bn(out));
  conv2_ = register_module("conv2", conv(out, out, 3, 1, 1));
  bn2_ = register_module("bn2", bn(out));
  if (residual_ && (stride != 1 || in != out)) {
    downsample_ = register_module("downsample", torch::nn::Sequential(conv(in, out, 1, stride, 0), bn(out)));
  }
}

torch::Tensor CnnBlockImpl::forward(const torch::Tensor& x) {
  return forward_with(x, [](const torch::nn::Conv2d& c, const torch::nn::BatchNorm2d& b, bool relu, const torch::Tensor& in) {
    auto y = b.ptr()->forward(c.ptr()->forward(in));
    return relu ? torch::relu(y) : y;
  });
}

torch::Tensor CnnBlockImpl::forward_with(const torch::Tensor& x, const ConvBnRunner& run) {
  // x may be quint8 (an int8 stem's output through the max pool): the convolutions read it as it
  // is, the identity shortcut dequantizes it.
  auto h = run(conv1_, bn1_, true, x);
  h = run(conv2_, bn2_, false, h);
  if (h.is_quantized()) h = dequantize_quint8(h);
  // In inference the sum and the ReLU run in place on the convolution's fresh output.
  const bool in_place = !h.requires_grad() && !x.requires_grad();
  if (residual_) {
    auto shortcut = x;
    if (downsample_) {
      const auto pairs = conv_bn_pairs();
      shortcut = run(pairs[2].first, pairs[2].second, false, x);
    }
    if (shortcut.is_quantized()) shortcut = dequantize_quint8(shortcut);
    h = in_place && shortcut.scalar_type() == h.scalar_type() ? h.add_(shortcut) : h + shortcut;
  }
  return in_place ? h.relu_() : torch::relu(h);
}

std::vector<std::pair<torch::nn::Conv2d, torch::nn::BatchNorm2d>> CnnBlockImpl::conv_bn_pairs() const {
  std::vector<std::pair<torch::nn::Conv2d, torch::nn::BatchNorm2d>> out = {{conv1_, bn1_}, {conv2_, bn2_}};
  if (downsample_) {
    out.emplace_back(torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(downsample_->ptr(0))),
                     torch::nn::BatchNorm2d(std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(downsample_->ptr(1))));
  }
  return out;
}

CnnModel::CnnModel(int64_t in_channels, int64_t num_classes, const CnnParams& params)
    : Model(num_classes), params_(params), in_channels_(in_channels) {
  const bool imagenet_stem = params_.preset == "resnet18";
  const int64_t w0 = params_.widths.front();
  conv1_ = register_module("conv1", imagenet_stem ? conv(in_channels, w0, 7, 2, 3) : conv(in_channels, w0, 3, 1, 1));
  bn1_ = register_module("bn1", bn(w0));
  int64_t in = w0;
  for (std::size_t s = 0; s < params_.widths.size(); ++s) {
    torch::nn::Sequential stage;
    for (int64_t b = 0; b < params_.blocks[s]; ++b) {
      const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
      stage->push_back(CnnBlock(in, params_.widths[s], stride, params_.residual));
      in = params_.widths[s];
    }
    stages_.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  // Every Conv+BN pair runs through run_conv_bn: a folded (fp32 or int8) variant may replace it.
  mark_replaceable(conv1_, bn1_);
  for (auto& stage : stages_) {
    for (const auto& block : stage->children()) {
      for (const auto& [c, b] : block->as<CnnBlockImpl>()->conv_bn_pairs()) mark_replaceable(c, b);
    }
  }
  if (num_classes > 0) {
    fc_ = register_module("fc", torch::nn::Linear(in, num_classes));
    init_weight(fc_->weight, "kaiming", in, num_classes);
    init_zeros(fc_->bias);
  }
}

torch::Tensor CnnModel::features(const torch::Tensor& pixels) {
  if (pixels.dim() != 4 || pixels.size(1) != in_channels_) {
    throw DataError("model family 'cnn' needs pixel_values [batch, " + std::to_string(in_channels_) +
                    ", height, width], got shape " + c10::str(pixels.sizes()) +
                    "; encode the images with the preprocessor the model was trained with");
  }
  const ConvBnRunner run = [this](const torch::nn::Conv2d& c, const torch::nn::BatchNorm2d& b, bool relu,
                                  const torch::Tensor& x) { return run_conv_bn(c, b, relu, x); };
  auto h = run(conv1_, bn1_, true, pixels);
  if (params_.preset == "resnet18") h = torch::max_pool2d(h, {3, 3}, {2, 2}, {1, 1}, {1, 1});  // quint8 pooling wants 2-d lists
  for (auto& stage : stages_) {
    for (const auto& block : stage->children()) h = block->as<CnnBlockImpl>()->forward_with(h, run);
  }
  // bf16 convolutions (an optimized variant) hand over bfloat16, int8 ones quint8: what reads the
  // grid gets float32.
  if (h.is_quantized()) return dequantize_quint8(h);
  return h.scalar_type() == torch::kFloat32 ? h : h.to(torch::kFloat32);
}

torch::Tensor CnnModel::embed(const Batch& batch) { return features(batch.at(kPixelValues)).mean({2, 3}); }

torch::Tensor CnnModel::classify(const torch::Tensor& pooled) {
  auto h = params_.dropout > 0 ? nn::dropout(pooled, params_.dropout, is_training()) : pooled;
  return fc_->forward(h);
}

std::shared_ptr<CnnModel> make_cnn_encoder(int64_t in_channels, const CnnParams& params) {
  return std::make_shared<CnnModel>(in_channels, 0, params);
}

int64_t pixel_channels(const std::string& family, const InputSpec& inputs) {
  const TensorSpec* t = inputs.find(kPixelValues);
  if (!t || t->shape.size() != 4) {
    throw ConfigError("model family '" + family + "' needs pixel_values [batch, channels, height, width] (the image "
                      "preprocessor, featurizer.type: image) but the inputs are " + inputs.describe());
  }
  try {
    const int64_t c = std::stoll(t->shape[1]);
    if (c >= 1) return c;
  } catch (const std::exception&) {
  }
  throw ConfigError("model family '" + family + "' needs a fixed channel count in pixel_values, got shape [" +
                    t->shape[0] + ", " + t->shape[1] + ", ...]");
}

ModelFamily cnn_family() {
  ModelFamily family;
  family.name = "cnn";
  family.description = "ResNet-style CNN over images: Conv+BN+ReLU blocks, residual shortcuts, global average pooling";
  family.default_params = cnn_default_params();
  family.validate = [](const nlohmann::json& params) { (void)parse_cnn_params(params); };
  family.inputs = {{kPixelValues}, {}};
  family.factory = [](const nlohmann::json& params, const InputSpec& inputs, int64_t num_classes) {
    return std::make_shared<CnnModel>(pixel_channels("cnn", inputs), num_classes, parse_cnn_params(params));
  };
  return family;
}

}  // namespace kiln::nn
