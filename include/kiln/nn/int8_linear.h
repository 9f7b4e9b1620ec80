// int8 Linear kernels (the ops of kiln optimize's int8 variants), on LibTorch's quantized engines.
//   weights: int8, symmetric, one scale per output channel: W ≈ W_q · s_w[o]
//   "linear_int8_dynamic": activations quantized per batch (each call's min/max), fp32 out
//   "linear_int8_static":  activations quantized with a calibrated per-tensor scale s_x (symmetric,
//                          |x| <= 127·s_x), the output with a calibrated s_y, fp32 out
//   On x86 CPUs without VNNI both run 7-bit activations (int8_reduced_range()): the same stored
//   scales, the activation step doubled at run time.
// Variant tensors (persisted in variants/<name>.safetensors, never rename):
//   "<module>.weight_int8" I8 [out, in], "<module>.weight_scale" F32 [out],
//   static only: "<module>.input_scale" F32 [1], "<module>.output_scale" F32 [1].
// The bias stays the fp32 module's.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "kiln/core/cpu.h"
#include "kiln/nn/module_kernel.h"

namespace kiln::nn {

/// Symmetric per-output-channel int8 weights: {W_q int8 [out, in], scales float32 [out]} with
/// s = max|W[o]| / 127 (1 for an all-zero row), W_q = clamp(round(W / s), -127, 127).
[[nodiscard]] std::pair<torch::Tensor, torch::Tensor> quantize_weight_per_channel(const torch::Tensor& weight);

/// The quantized engine int8 kernels run on: the best this LibTorch supports (fbgemm, else onednn,
/// else qnnpack), or "" when it has none. Selecting it is process-wide (at::globalContext()).
[[nodiscard]] std::string select_quantized_engine();

/// at::quantize_per_tensor(x, scale, zero_point, kQUInt8) for a float32 x, computed the same way
/// (round half to even of x · (1/scale), plus the zero point, clamped to [0, 255]), vectorized and
/// threaded: Debian's LibTorch, built without FBGEMM, quantizes one value at a time, and at 224 px
/// that cost more than the int8 convolutions saved. Keeps x's memory format (contiguous or
/// channels-last); a strided x is made contiguous in it first.
[[nodiscard]] torch::Tensor quantize_quint8(const torch::Tensor& x, double scale, int64_t zero_point);
/// q.dequantize() for a per-tensor quint8 q ((q - zero point) · scale), vectorized and threaded, in
/// q's memory format; other quantized tensors go to q.dequantize().
[[nodiscard]] torch::Tensor dequantize_quint8(const torch::Tensor& q);
/// Boxed call of operator `name`.`overload` (quantized:: ops take packed weights, a TorchScript
/// class the typed API cannot name without ATen's private headers); returns its last output.
[[nodiscard]] c10::IValue call_boxed_op(const char* name, const char* overload, std::vector<c10::IValue> args);
/// The engines this LibTorch supports, in LibTorch's names.
[[nodiscard]] std::vector<std::string> supported_quantized_engines();

/// True when `engine` on `cpu` must keep int8 activations to 7 bits (values 0..127). Without VNNI,
/// x86 int8 kernels (fbgemm's and onednn's) multiply u8 activations by s8 weights with vpmaddubsw,
/// which adds each pair of products into a saturating 16-bit sum: 255·127·2 overflows it, and the
/// layer's output is wrong by up to a tenth of its range. 7-bit activations (127·127·2) cannot
/// overflow; this is what PyTorch's reduce_range does. VNNI (vpdpbusd, 32-bit sums), AMX and qnnpack
/// keep all 8 bits.
[[nodiscard]] bool int8_needs_reduced_range(const std::string& engine, const core::CpuInfo& cpu);
/// The same for the engine select_quantized_engine() chose and this machine's CPU (cached).
[[nodiscard]] bool int8_reduced_range();

class Int8LinearKernel : public ModuleKernel {
 public:
  /// Dynamic when input_scale <= 0, static otherwise (then output_scale > 0 too). Throws
  /// ArtifactError naming `module` for mismatched shapes, and when this LibTorch has no quantized engine.
  Int8LinearKernel(std::string module, const torch::Tensor& weight_int8, const torch::Tensor& weight_scale,
                   const torch::Tensor& bias, double input_scale = 0, double output_scale = 0);
  [[nodiscard]] torch::Tensor forward(const torch::Tensor& input) override;
  [[nodiscard]] std::string op() const override {
    return input_scale_ > 0 ? "linear_int8_static" : "linear_int8_dynamic";
  }
  /// Bytes of the packed weights as stored (int8 + scales + bias).
  [[nodiscard]] int64_t weight_bytes() const override { return weight_bytes_; }

 private:
  std::string module_;
  c10::IValue packed_;
  double input_scale_ = 0;
  double output_scale_ = 0;
  bool reduced_range_ = false;  ///< int8_reduced_range(): 7-bit activations
  int64_t out_features_ = 0;
  int64_t weight_bytes_ = 0;
};

}  // namespace kiln::nn
