#include "kiln/nn/int8_linear.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdint>
#include <mutex>

#include "kiln/core/error.h"

namespace kiln::nn {
namespace {

std::string engine_name(at::QEngine e) {
  switch (e) {
    case at::QEngine::FBGEMM: return "fbgemm";
    case at::QEngine::QNNPACK: return "qnnpack";
    case at::QEngine::ONEDNN: return "onednn";
    default: return "none";
  }
}

c10::IValue call_op(const char* name, std::vector<c10::IValue> args) { return call_boxed_op(name, "", std::move(args)); }

// 1.5 · 2^23: adding and subtracting it rounds a float of magnitude < 2^22 to an integer, half to
// even (the default rounding mode), as std::nearbyint does, in a form every vector unit has.
constexpr float kRoundMagic = 12582912.0f;

__attribute__((target_clones("avx512f", "avx2", "default")))
void quantize_span(const float* x, std::uint8_t* q, int64_t n, float inv_scale, float zero_point) {
  const float lo = -zero_point - 1.0f, hi = 256.0f - zero_point;
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] * inv_scale;
    v = v > lo ? v : lo;  // NaN lands here too (as 0 after the zero point)
    v = v < hi ? v : hi;
    float r = (v + kRoundMagic) - kRoundMagic + zero_point;
    r = r > 0.0f ? r : 0.0f;
    r = r < 255.0f ? r : 255.0f;
    q[i] = static_cast<std::uint8_t>(static_cast<int32_t>(r));
  }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void dequantize_span(const std::uint8_t* q, float* x, int64_t n, float scale, float zero_point) {
  for (int64_t i = 0; i < n; ++i) x[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

// The memory format x is dense in (channels-last for a 4-d NHWC tensor, else contiguous).
at::MemoryFormat dense_format(const torch::Tensor& x) {
  return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)
             ? at::MemoryFormat::ChannelsLast
             : at::MemoryFormat::Contiguous;
}

constexpr int64_t kGrain = 1 << 16;

}  // namespace

torch::Tensor quantize_quint8(const torch::Tensor& input, double scale, int64_t zero_point) {
  const auto format = dense_format(input);
  const auto x = input.scalar_type() == torch::kFloat32 ? input.contiguous(format)
                                                         : input.to(torch::kFloat32).contiguous(format);
  auto q = at::_empty_affine_quantized(x.sizes(), at::device(torch::kCPU).dtype(torch::kQUInt8), scale, zero_point, format);
  const float* src = x.data_ptr<float>();
  auto* dst = reinterpret_cast<std::uint8_t*>(q.data_ptr<c10::quint8>());
  const float inv_scale = 1.0f / static_cast<float>(scale);  // as ATen's quantize_val
  const auto zp = static_cast<float>(zero_point);
  at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
    quantize_span(src + begin, dst + begin, end - begin, inv_scale, zp);
  });
  return q;
}

torch::Tensor dequantize_quint8(const torch::Tensor& input) {
  if (input.scalar_type() != torch::kQUInt8 || input.qscheme() != at::kPerTensorAffine) return input.dequantize();
  const auto format = dense_format(input);
  const auto q = input.contiguous(format);
  auto x = at::empty(q.sizes(), at::device(torch::kCPU).dtype(torch::kFloat32), format);
  const auto* src = reinterpret_cast<const std::uint8_t*>(q.data_ptr<c10::quint8>());
  float* dst = x.data_ptr<float>();
  const auto scale = static_cast<float>(q.q_scale());
  const auto zp = static_cast<float>(q.q_zero_point());
  at::parallel_for(0, q.numel(), kGrain, [&](int64_t begin, int64_t end) {
    dequantize_span(src + begin, dst + begin, end - begin, scale, zp);
  });
  return x;
}

c10::IValue call_boxed_op(const char* name, const char* overload, std::vector<c10::IValue> args) {
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
  torch::jit::Stack stack(std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
  handle.callBoxed(&stack);
  return std::move(stack.back());
}

std::vector<std::string> supported_quantized_engines() {
  std::vector<std::string> out;
  for (const auto e : at::globalContext().supportedQEngines()) {
    if (e != at::QEngine::NoQEngine) out.push_back(engine_name(e));
  }
  return out;
}

std::string select_quantized_engine() {
  static std::once_flag once;
  static std::string chosen;
  std::call_once(once, [] {
    const auto& engines = at::globalContext().supportedQEngines();
    for (const auto want : {at::QEngine::FBGEMM, at::QEngine::ONEDNN, at::QEngine::QNNPACK}) {
      if (std::find(engines.begin(), engines.end(), want) != engines.end()) {
        at::globalContext().setQEngine(want);
        chosen = engine_name(want);
        return;
      }
    }
  });
  return chosen;
}

bool int8_needs_reduced_range(const std::string& engine, const core::CpuInfo& cpu) {
  if (engine != "fbgemm" && engine != "onednn") return false;
  const bool vnni = (cpu.avx512_vnni && cpu.os_avx512) || (cpu.avx_vnni && cpu.os_avx) || (cpu.amx_int8 && cpu.os_amx);
  return !vnni;
}

bool int8_reduced_range() {
  static const bool reduced = int8_needs_reduced_range(select_quantized_engine(), core::cpu_info());
  return reduced;
}

std::pair<torch::Tensor, torch::Tensor> quantize_weight_per_channel(const torch::Tensor& weight) {
  auto w = weight.detach().to(torch::kFloat32).contiguous();
  auto scale = std::get<0>(w.abs().max(1)) / 127.0;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  auto q = torch::clamp(torch::round(w / scale.unsqueeze(1)), -127, 127).to(torch::kInt8);
  return {q, scale};
}

Int8LinearKernel::Int8LinearKernel(std::string module, const torch::Tensor& weight_int8, const torch::Tensor& weight_scale,
                                   const torch::Tensor& bias, double input_scale, double output_scale)
    : module_(std::move(module)), input_scale_(input_scale), output_scale_(output_scale) {
  if (select_quantized_engine().empty()) {
    throw ArtifactError("module '" + module_ + "': the int8 variant needs a LibTorch quantized engine (fbgemm, onednn or "
                        "qnnpack) and this LibTorch has none; run the fp32 weights (--variant fp32)");
  }
  if (weight_int8.dim() != 2 || weight_int8.scalar_type() != torch::kInt8) {
    throw ArtifactError("variant tensor '" + module_ + ".weight_int8' must be int8 [out, in], got " +
                        std::string(c10::toString(weight_int8.scalar_type())) + " of " + std::to_string(weight_int8.dim()) +
                        " dims");
  }
  out_features_ = weight_int8.size(0);
  if (weight_scale.dim() != 1 || weight_scale.size(0) != out_features_) {
    throw ArtifactError("variant tensor '" + module_ + ".weight_scale' must have " + std::to_string(out_features_) +
                        " values (one per output channel)");
  }
  if (input_scale_ > 0 && !(output_scale_ > 0)) {
    throw ArtifactError("module '" + module_ + "': a static int8 layer needs an output scale > 0");
  }
  reduced_range_ = int8_reduced_range();
  auto scales = weight_scale.to(torch::kDouble).contiguous();
  auto zeros = torch::zeros({out_features_}, torch::kLong);
  auto qw = at::_make_per_channel_quantized_tensor(weight_int8.contiguous(), scales, zeros, 0);
  const torch::Tensor b = bias.defined() ? bias.detach().to(torch::kFloat32).contiguous() : torch::Tensor();
  c10::IValue bias_value = b.defined() ? c10::IValue(b) : c10::IValue();
  try {
    packed_ = call_op("quantized::linear_prepack", {qw, bias_value});
  } catch (const c10::Error& e) {
    throw ArtifactError("module '" + module_ + "': packing int8 weights failed on engine " + select_quantized_engine() +
                        ": " + e.what_without_backtrace());
  }
  weight_bytes_ = weight_int8.numel() + 4 * out_features_ + (b.defined() ? 4 * b.numel() : 0);
}

torch::Tensor Int8LinearKernel::forward(const torch::Tensor& input) {
  auto x = input.contiguous();
  if (input_scale_ <= 0) {
    // reduce_range: each call's range in 0..127.
    return call_op("quantized::linear_dynamic", {x, packed_, reduced_range_}).toTensor();
  }
  // Symmetric activations: quint8 with zero point 128 holds [-128, 127]·s; clamp to ±127·s. With
  // 7 bits, zero point 64 and twice the step hold [-128, 126]·s.
  auto qx = reduced_range_ ? quantize_quint8(x, 2 * input_scale_, 64) : quantize_quint8(x, input_scale_, 128);
  auto qy = call_op("quantized::linear", {qx, packed_, output_scale_, int64_t{128}}).toTensor();
  return dequantize_quint8(qy);
}

}  // namespace kiln::nn
