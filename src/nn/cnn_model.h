// Family "cnn": a ResNet-style stack over pixel_values [batch, C, H, W].
//   stem:    "small":    conv1 3x3 stride 1 → bn1 → ReLU
//            "resnet18": conv1 7x7 stride 2 (padding 3) → bn1 → ReLU → maxpool 3x3 stride 2 (padding 1)
//   stages:  layer<k> (k = 1..), blocks[k-1] BasicBlocks of widths[k-1] channels; the first block of
//            every stage after the first has stride 2. BasicBlock: conv1 3x3 → bn1 → ReLU → conv2 3x3
//            → bn2 → (+ shortcut when residual) → ReLU; the shortcut is the identity, or
//            downsample = (1x1 conv with the block's stride → BN) when the shape changes.
//   head:    global average pooling → dropout (training) → fc.
// Convolutions have no bias (BN follows). Init: convolutions Kaiming normal (fan_out, ReLU gain) as
// torchvision's ResNet; BN weight 1, bias 0; fc Kaiming uniform with zero bias.
// Parameter and buffer names are torchvision's ResNet state_dict names ("conv1.weight", "bn1.running_mean",
// "layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.bias", ...): preset "resnet18" with
// 3 channels has exactly torchvision.models.resnet18's keys. Persisted: never rename.
// Presets: "small" (default, 28-64 px inputs; works down to 8x8): widths [32, 64, 128], blocks [1, 1, 1];
// "resnet18": widths [64, 128, 256, 512], blocks [2, 2, 2, 2].
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/nn/model.h"

namespace kiln::nn {

struct CnnParams {
  /// "small" | "resnet18": the stem and the default widths and blocks. Default "small".
  std::string preset = "small";
  /// Channels per stage; empty = the preset's.
  std::vector<int64_t> widths;
  /// BasicBlocks per stage (same length as widths); empty = the preset's.
  std::vector<int64_t> blocks;
  /// Residual shortcuts in every block. Default true.
  bool residual = true;
  /// Dropout before fc, in [0, 1). Default 0.
  double dropout = 0.0;
};

[[nodiscard]] nlohmann::json cnn_default_params();
/// Throws ConfigError naming the field for unknown keys, wrong types or values out of range.
[[nodiscard]] CnnParams parse_cnn_params(const nlohmann::json& params);

/// relu?(bn(conv(x))): how a block runs each Conv+BN pair (the model's run_conv_bn, so that a
/// folded or int8 kernel can replace the pair).
using ConvBnRunner = std::function<torch::Tensor(const torch::nn::Conv2d&, const torch::nn::BatchNorm2d&, bool relu,
                                                 const torch::Tensor&)>;

class CnnBlockImpl : public torch::nn::Module {
 public:
  CnnBlockImpl(int64_t in, int64_t out, int64_t stride, bool residual);
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& x);
  /// The same through `run` (each Conv+BN(+ReLU) pair).
  [[nodiscard]] torch::Tensor forward_with(const torch::Tensor& x, const ConvBnRunner& run);
  /// The block's Conv+BN pairs: conv1/bn1, conv2/bn2, and the downsample's when present.
  [[nodiscard]] std::vector<std::pair<torch::nn::Conv2d, torch::nn::BatchNorm2d>> conv_bn_pairs() const;

 private:
  bool residual_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(CnnBlock);

class CnnModel : public Model {
 public:
  CnnModel(int64_t in_channels, int64_t num_classes, const CnnParams& params);
  /// The last stage's feature grid [batch, widths.back(), h, w] (before pooling).
  [[nodiscard]] torch::Tensor features(const torch::Tensor& pixels);
  /// Globally average-pooled features [batch, widths.back()].
  [[nodiscard]] torch::Tensor embed(const Batch& batch) override;
  [[nodiscard]] torch::Tensor classify(const torch::Tensor& pooled) override;
  [[nodiscard]] int64_t embedding_dim() const override { return params_.widths.back(); }

 private:
  CnnParams params_;
  int64_t in_channels_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> stages_;
  torch::nn::Linear fc_{nullptr};
};

/// The CNN trunk alone (stem + stages, no head), for other families that need an image encoder
/// (multimodal): registered under the caller's module name, names as above without "fc".
[[nodiscard]] std::shared_ptr<CnnModel> make_cnn_encoder(int64_t in_channels, const CnnParams& params);

}  // namespace kiln::nn
