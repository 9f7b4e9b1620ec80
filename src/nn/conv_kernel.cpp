#include "kiln/nn/conv_kernel.h"

#include "kiln/core/error.h"
#include "kiln/nn/int8_linear.h"

namespace kiln::nn {
namespace {

std::vector<int64_t> vec(torch::ExpandingArray<2> a) { return {(*a)[0], (*a)[1]}; }

std::vector<int64_t> padding_of(const torch::nn::Conv2d& conv, const std::string& module) {
  const auto& p = conv->options.padding();
  if (const auto* fixed = c10::get_if<torch::ExpandingArray<2>>(&p)) return vec(*fixed);
  throw ArtifactError("module '" + module + "': folded kernels need a convolution with explicit padding");
}

void check_shapes(const std::string& module, const torch::nn::Conv2d& conv, const torch::Tensor& weight,
                  const torch::Tensor& bias, const char* weight_name) {
  if (weight.sizes() != conv->weight.sizes()) {
    throw ArtifactError("variant tensor '" + module + "." + weight_name + "' has shape " + c10::str(weight.sizes()) +
                        " but the convolution's weight is " + c10::str(conv->weight.sizes()) +
                        "; the variant belongs to another model: run kiln optimize again");
  }
  if (bias.dim() != 1 || bias.size(0) != weight.size(0)) {
    throw ArtifactError("variant tensor '" + module + ".bias_folded' must have " + std::to_string(weight.size(0)) +
                        " values (one per output channel)");
  }
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> fold_conv_bn(const torch::nn::Conv2d& conv, const torch::nn::BatchNorm2d& bn) {
  torch::NoGradGuard no_grad;
  const auto w = conv->weight.detach().to(torch::kFloat32);
  const int64_t out = w.size(0);
  const auto b = conv->bias.defined() ? conv->bias.detach().to(torch::kFloat32) : torch::zeros({out});
  const auto gamma = bn->weight.defined() ? bn->weight.detach().to(torch::kFloat32) : torch::ones({out});
  const auto beta = bn->bias.defined() ? bn->bias.detach().to(torch::kFloat32) : torch::zeros({out});
  const auto factor = gamma / torch::sqrt(bn->running_var.detach().to(torch::kFloat32) + bn->options.eps());
  auto folded_w = (w * factor.view({out, 1, 1, 1})).contiguous();
  auto folded_b = ((b - bn->running_mean.detach().to(torch::kFloat32)) * factor + beta).contiguous();
  return {folded_w, folded_b};
}

QParams activation_qparams(double threshold, bool non_negative) {
  const double t = threshold > 0 ? threshold : 1.0;
  return non_negative ? QParams{t / 255.0, 0} : QParams{t / 127.0, 128};
}

QParams seven_bit_qparams(QParams p) {
  if (p.zero_point == 0) return QParams{p.scale * 255.0 / 127.0, 0};
  return QParams{p.scale * 2.0, p.zero_point / 2};
}

ConvBnKernel::ConvBnKernel(std::string module, const torch::nn::Conv2d& conv, const torch::Tensor& weight,
                           const torch::Tensor& bias)
    : weight_(weight.to(torch::kFloat32).contiguous()), bias_(bias.to(torch::kFloat32).contiguous()),
      stride_(vec(conv->options.stride())), padding_(padding_of(conv, module)), dilation_(vec(conv->options.dilation())),
      groups_(conv->options.groups()) {
  check_shapes(module, conv, weight_, bias_, "weight_folded");
}

torch::Tensor ConvBnKernel::forward(const torch::Tensor& input) {
  // A bf16 convolution before this one (a mixed variant with --keep-fp32) hands over bfloat16, an
  // int8 one with a fused ReLU quint8.
  const auto x = input.is_quantized() ? dequantize_quint8(input)
                 : input.scalar_type() == torch::kFloat32 ? input
                                                          : input.to(torch::kFloat32);
  return torch::conv2d(x, weight_, bias_, stride_, padding_, dilation_, groups_);
}

Bf16ConvKernel::Bf16ConvKernel(std::string module, const torch::nn::Conv2d& conv, const torch::Tensor& weight_bf16,
                               const torch::Tensor& bias)
    : bias_(bias.to(torch::kFloat32).contiguous()), stride_(vec(conv->options.stride())),
      padding_(padding_of(conv, module)), dilation_(vec(conv->options.dilation())), groups_(conv->options.groups()) {
  if (weight_bf16.scalar_type() != torch::kBFloat16) {
    throw ArtifactError("variant tensor '" + module + ".weight_folded_bf16' must be bfloat16, got " +
                        std::string(c10::toString(weight_bf16.scalar_type())));
  }
  check_shapes(module, conv, weight_bf16, bias_, "weight_folded_bf16");
  weight_ = weight_bf16.contiguous(at::MemoryFormat::ChannelsLast);
  bias_bf16_ = bias_.to(torch::kBFloat16);
}

torch::Tensor Bf16ConvKernel::forward(const torch::Tensor& input) {
  const auto x = (input.is_quantized()                       ? dequantize_quint8(input).to(torch::kBFloat16)
                  : input.scalar_type() == torch::kBFloat16 ? input
                                                            : input.to(torch::kBFloat16))
                     .contiguous(at::MemoryFormat::ChannelsLast);
  return torch::conv2d(x, weight_, bias_bf16_, stride_, padding_, dilation_, groups_);
}

torch::Tensor Bf16ConvKernel::forward_relu(const torch::Tensor& input) { return forward(input).relu_(); }

torch::Tensor ConvBnKernel::forward_relu(const torch::Tensor& input) { return forward(input).relu_(); }

Int8ConvKernel::Int8ConvKernel(std::string module, const torch::nn::Conv2d& conv, const torch::Tensor& weight_int8,
                               const torch::Tensor& weight_scale, const torch::Tensor& bias, QParams input, QParams output)
    : module_(std::move(module)), input_(input), output_(output) {
  if (select_quantized_engine().empty()) {
    throw ArtifactError("module '" + module_ + "': the int8 variant needs a LibTorch quantized engine (fbgemm, onednn or "
                        "qnnpack) and this LibTorch has none; run the fp32 weights (--variant fp32)");
  }
  if (weight_int8.scalar_type() != torch::kInt8) {
    throw ArtifactError("variant tensor '" + module_ + ".weight_int8' must be int8, got " +
                        std::string(c10::toString(weight_int8.scalar_type())));
  }
  const auto b = bias.to(torch::kFloat32).contiguous();
  check_shapes(module_, conv, weight_int8, b, "weight_int8");
  const int64_t out = weight_int8.size(0);
  if (weight_scale.dim() != 1 || weight_scale.size(0) != out) {
    throw ArtifactError("variant tensor '" + module_ + ".weight_scale' must have " + std::to_string(out) +
                        " values (one per output channel)");
  }
  if (!(input_.scale > 0) || !(output_.scale > 0)) {
    throw ArtifactError("module '" + module_ + "': a static int8 convolution needs input and output scales > 0");
  }
  relu_output_ = output_;
  if (int8_reduced_range()) {  // x86 without VNNI: 8-bit activations would saturate the kernels' 16-bit sums
    input_ = seven_bit_qparams(input_);
    relu_output_ = seven_bit_qparams(output_);
  }
  auto qw = at::_make_per_channel_quantized_tensor(weight_int8.contiguous(), weight_scale.to(torch::kDouble).contiguous(),
                                                   torch::zeros({out}, torch::kLong), 0);
  const auto list = [](const std::vector<int64_t>& v) { return c10::IValue(v); };
  try {
    packed_ = call_boxed_op("quantized::conv2d_prepack", "",
                            {qw, c10::IValue(b), list(vec(conv->options.stride())), list(padding_of(conv, module_)),
                             list(vec(conv->options.dilation())), c10::IValue(conv->options.groups())});
  } catch (const c10::Error& e) {
    throw ArtifactError("module '" + module_ + "': packing int8 convolution weights failed on engine " +
                        select_quantized_engine() + ": " + e.what_without_backtrace());
  }
  weight_bytes_ = weight_int8.numel() + 4 * out + 4 * b.numel();
}

torch::Tensor Int8ConvKernel::quantize_input(const torch::Tensor& input) const {
  // An int8 convolution with a fused ReLU before this one hands over its quint8 output (through a
  // max pool, perhaps): the quantized op reads its scale from the tensor, so it runs as it is.
  if (input.is_quantized() && input.scalar_type() == torch::kQUInt8 && input.qscheme() == at::kPerTensorAffine) {
    return input.contiguous(at::MemoryFormat::ChannelsLast);
  }
  if (input.is_quantized()) return quantize_input(dequantize_quint8(input));
  // The quantized engines run NHWC: keep activations channels-last between layers.
  const auto x = input.scalar_type() == torch::kFloat32 ? input : input.to(torch::kFloat32);
  return quantize_quint8(x.contiguous(at::MemoryFormat::ChannelsLast), input_.scale, input_.zero_point);
}

torch::Tensor Int8ConvKernel::forward(const torch::Tensor& input) {
  // Calibrated for a ReLU output (zero point 0): a plain call keeps the negative half at twice the step.
  const QParams o = output_.zero_point == 0 ? QParams{output_.scale * 2.0, 128} : output_;
  return dequantize_quint8(
      call_boxed_op("quantized::conv2d", "new", {quantize_input(input), packed_, o.scale, o.zero_point}).toTensor());
}

torch::Tensor Int8ConvKernel::forward_relu(const torch::Tensor& input) {
  // The output stays quint8: the next int8 convolution reads it without a dequantize/quantize
  // round trip; whatever else reads it dequantizes.
  return call_boxed_op("quantized::conv2d_relu", "new", {quantize_input(input), packed_, relu_output_.scale,
                                                       relu_output_.zero_point})
      .toTensor();
}

}  // namespace kiln::nn
