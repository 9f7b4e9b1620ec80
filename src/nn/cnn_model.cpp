#include "cnn_model.h"

#include <cmath>

#include "builtin_families.h"
#include "dropout.h"
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
  auto h = torch::relu(bn1_->forward(conv1_->forward(x)));
  h = bn2_->forward(conv2_->forward(h));
  if (residual_) h = h + (downsample_ ? downsample_->forward(x) : x);
  return torch::relu(h);
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
  auto h = torch::relu(bn1_->forward(conv1_->forward(pixels)));
  if (params_.preset == "resnet18") h = torch::max_pool2d(h, 3, 2, 1);
  for (auto& stage : stages_) h = stage->forward(h);
  return h;
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
