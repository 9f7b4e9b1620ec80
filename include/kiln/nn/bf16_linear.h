// bf16 Linear kernel (the op of kiln optimize's bf16 variants, CPUs with AVX-512 BF16 or AMX):
//   "linear_bf16": weights stored bfloat16; each call casts its input to bfloat16, runs LibTorch's
//                  bf16 linear (oneDNN on the CPU), adds the fp32 bias and returns float32.
// Variant tensors (persisted in variants/<name>.safetensors, never rename):
//   "<module>.weight_bf16" BF16 [out, in]; the bias stays the fp32 module's.
#pragma once

#include <torch/torch.h>

#include <string>

#include "kiln/core/cpu.h"
#include "kiln/nn/module_kernel.h"

namespace kiln::nn {

/// Whether `cpu` runs bf16 matrix products natively (AVX-512 BF16 or AMX-BF16, OS-enabled).
[[nodiscard]] bool cpu_has_bf16(const core::CpuInfo& cpu = core::cpu_info());

class Bf16LinearKernel : public ModuleKernel {
 public:
  /// Throws ArtifactError naming `module` for a weight that is not bf16 [out, in] matching the bias.
  Bf16LinearKernel(std::string module, const torch::Tensor& weight_bf16, const torch::Tensor& bias);
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& input) override;
  [[nodiscard]] std::string op() const override { return "linear_bf16"; }
  [[nodiscard]] int64_t weight_bytes() const override { return 2 * weight_.numel() + (bias_.defined() ? 4 * bias_.numel() : 0); }

 private:
  torch::Tensor weight_, bias_;
};

}  // namespace kiln::nn
