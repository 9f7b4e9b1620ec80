#include "kiln/nn/bf16_linear.h"

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"

namespace kiln::nn {

bool cpu_has_bf16(const core::CpuInfo& c) {
  return (c.avx512_bf16 && c.os_avx512) || (c.amx_bf16 && c.os_amx);
}

Bf16LinearKernel::Bf16LinearKernel(std::string module, const torch::Tensor& weight_bf16, const torch::Tensor& bias) {
  if (weight_bf16.dim() != 2 || weight_bf16.scalar_type() != torch::kBFloat16) {
    throw ArtifactError("variant tensor '" + module + ".weight_bf16' must be bf16 [out, in], got " +
                        std::string(c10::toString(weight_bf16.scalar_type())) + " of " +
                        std::to_string(weight_bf16.dim()) + " dims");
  }
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight_bf16.size(0))) {
    throw ArtifactError("module '" + module + "': the bf16 weight has " + std::to_string(weight_bf16.size(0)) +
                        " output channels but the bias " + std::to_string(bias.numel()) +
                        "; the variant belongs to another model: run kiln optimize again");
  }
  weight_ = weight_bf16.contiguous();
  if (bias.defined()) bias_ = bias.detach().to(torch::kFloat32).contiguous();
}

torch::Tensor Bf16LinearKernel::forward(const torch::Tensor& input) {
  auto y = torch::linear(input.to(torch::kBFloat16), weight_).to(torch::kFloat32);
  return bias_.defined() ? y.add_(bias_) : y;
}

}  // namespace kiln::nn
