// Folded Conv+BN(+ReLU) kernels (the ops of kiln optimize's CNN variants).
//   fold: a convolution followed by an eval-mode BatchNorm is one convolution with
//         W' = W · γ / √(σ² + ε)   (per output channel)
//         b' = (b − μ) · γ / √(σ² + ε) + β   (b = 0 for a convolution without bias)
//   "conv_bn_fp32":        the folded convolution in fp32; the ReLU that follows (when the family
//                          asks for one) runs in place on its output.
//   "conv_bn_bf16":        the folded convolution in bfloat16 (oneDNN; CPUs with AVX-512 BF16 or
//                          AMX-BF16), channels-last; its output stays bfloat16 so that the next
//                          folded convolution, the residual add and the pooling read it without a
//                          cast (the CNN trunk casts its last feature grid back to float32).
//   "conv_bn_int8_static": the folded convolution on LibTorch's quantized engine: weights int8
//                          symmetric per output channel, activations quint8 per tensor with
//                          calibrated scales; the ReLU is fused into the quantized op
//                          (quantized::conv2d_relu), whose output stays quint8 (the next int8
//                          convolution reads it as it is, a max pool pools it, anything else
//                          dequantizes it); without a ReLU the output is dequantized to fp32.
// Variant tensors (persisted in variants/<name>.safetensors, never rename):
//   fp32: "<conv>.weight_folded" F32 [out, in, kh, kw], "<conv>.bias_folded" F32 [out]
//   bf16: "<conv>.weight_folded_bf16" BF16 [out, in, kh, kw], "<conv>.bias_folded" F32 [out]
//   int8: "<conv>.weight_int8" I8 [out, in, kh, kw], "<conv>.weight_scale" F32 [out],
//         "<conv>.bias_folded" F32 [out], "<conv>.input_qparams" and "<conv>.output_qparams"
//         F32 [2] = {scale, zero point} (zero point 0: a non-negative tensor on [0, 255·scale];
//         128: a signed one on [−128·scale, 127·scale]).
// Stride, padding, dilation and groups are the fp32 module's (the artifact's model spec).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>

#include "kiln/nn/module_kernel.h"

namespace kiln::nn {

/// {W', b'} of `conv` followed by eval-mode `bn` (formulas above), float32.
[[nodiscard]] std::pair<torch::Tensor, torch::Tensor> fold_conv_bn(const torch::nn::Conv2d& conv,
                                                                   const torch::nn::BatchNorm2d& bn);

/// Per-tensor activation quantization parameters of a calibrated range: zero point 0 and
/// scale = threshold / 255 for a tensor never below 0, else zero point 128 and scale = threshold / 127.
struct QParams {
  double scale = 1.0;
  int64_t zero_point = 128;
};
[[nodiscard]] QParams activation_qparams(double threshold, bool non_negative);
/// The same range in 7 bits (values 0..127, for int8_reduced_range()): zero point 0 keeps it and
/// takes the step 255/127 times larger, another zero point is halved and the step doubled.
[[nodiscard]] QParams seven_bit_qparams(QParams p);

class ConvBnKernel : public ModuleKernel {
 public:
  /// Throws ArtifactError naming `module` when the shapes do not match the convolution.
  ConvBnKernel(std::string module, const torch::nn::Conv2d& conv, const torch::Tensor& weight, const torch::Tensor& bias);
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& input) override;
  [[nodiscard]] torch::Tensor forward_relu(const torch::Tensor& input) override;
  [[nodiscard]] std::string op() const override { return "conv_bn_fp32"; }
  [[nodiscard]] int64_t weight_bytes() const override { return 4 * (weight_.numel() + bias_.numel()); }

 private:
  torch::Tensor weight_, bias_;
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_ = 1;
};

class Bf16ConvKernel : public ModuleKernel {
 public:
  /// Throws ArtifactError naming `module` when the weight is not bf16 or the shapes do not match.
  Bf16ConvKernel(std::string module, const torch::nn::Conv2d& conv, const torch::Tensor& weight_bf16,
                 const torch::Tensor& bias);
  /// bfloat16 output (channels-last) for a float32 or bfloat16 input.
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& input) override;
  [[nodiscard]] torch::Tensor forward_relu(const torch::Tensor& input) override;
  [[nodiscard]] std::string op() const override { return "conv_bn_bf16"; }
  [[nodiscard]] int64_t weight_bytes() const override { return 2 * weight_.numel() + 4 * bias_.numel(); }

 private:
  torch::Tensor weight_, bias_, bias_bf16_;
  std::vector<int64_t> stride_, padding_, dilation_;
  int64_t groups_ = 1;
};

class Int8ConvKernel : public ModuleKernel {
 public:
  /// Throws ArtifactError naming `module` for mismatched tensors or a LibTorch without a quantized engine.
  Int8ConvKernel(std::string module, const torch::nn::Conv2d& conv, const torch::Tensor& weight_int8,
                 const torch::Tensor& weight_scale, const torch::Tensor& bias, QParams input, QParams output);
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& input) override;
  [[nodiscard]] torch::Tensor forward_relu(const torch::Tensor& input) override;
  [[nodiscard]] std::string op() const override { return "conv_bn_int8_static"; }
  [[nodiscard]] int64_t weight_bytes() const override { return weight_bytes_; }

 private:
  [[nodiscard]] torch::Tensor quantize_input(const torch::Tensor& input) const;
  std::string module_;
  c10::IValue packed_;
  QParams input_, output_;
  /// The fused ReLU's quint8 output, which the next int8 convolution reads as it is: output_, in
  /// 7 bits where int8_reduced_range() (as input_ then).
  QParams relu_output_;
  int64_t weight_bytes_ = 0;
};

}  // namespace kiln::nn
