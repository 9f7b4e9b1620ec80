// Kernels that replace a module's forward pass in an optimized model (int8 Linear today; folded
// Conv+BN+ReLU for a CNN family later). A family routes each replaceable layer through
// Model::run_linear (or a sibling for its module type); with no kernel installed that is the plain
// fp32 module. Kernels are installed by name (the module's path in named_modules(), the same names
// as the weights in model.safetensors) by the artifact loader or by kiln optimize's calibration.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace kiln::nn {

/// One replaced module. Thread-safety: forward() is called from many threads once installed;
/// implementations that record (calibration observers) lock themselves.
class ModuleKernel {
 public:
  virtual ~ModuleKernel() = default;
  /// The module's output for `input` (same shapes and dtype as the fp32 module's forward; bf16
  /// convolutions return bfloat16, and int8 ones quint8 from forward_relu, which the next kernel,
  /// Model::run_conv_bn and the CNN trunk accept).
  [[nodiscard]] virtual torch::Tensor forward(const torch::Tensor& input) = 0;
  /// relu(forward(input)); kernels that fuse the ReLU into their op override it.
  [[nodiscard]] virtual torch::Tensor forward_relu(const torch::Tensor& input) { return torch::relu(forward(input)); }
  /// The op name persisted in kiln.json's variant "ops" (e.g. "linear_int8_dynamic").
  [[nodiscard]] virtual std::string op() const = 0;
  /// Bytes of the tensors the kernel runs with (replacing the module's weight and bias); -1 when
  /// it keeps the module's own (observers).
  [[nodiscard]] virtual int64_t weight_bytes() const { return -1; }
};

/// A variant op: builds the kernel of module `module` (its fp32 module given) from the variant's
/// tensors named "<module>.<suffix>". Throws ArtifactError naming the missing tensor.
using VariantTensors = std::map<std::string, torch::Tensor>;
using VariantOpFactory = std::function<std::shared_ptr<ModuleKernel>(
    const std::string& module, torch::nn::Module& fp32_module, const VariantTensors& tensors)>;

/// Registers the factory of op `name` (replacing one of the same name). Thread-safe.
void register_variant_op(const std::string& name, VariantOpFactory factory);
/// The factory of op `name`, or nullptr when this Kiln does not know it.
[[nodiscard]] VariantOpFactory find_variant_op(const std::string& name);
/// Known op names, sorted (built-ins: "linear_int8_dynamic", "linear_int8_static", "linear_bf16",
/// "conv_bn_fp32", "conv_bn_bf16", "conv_bn_int8_static").
[[nodiscard]] std::vector<std::string> variant_op_names();

}  // namespace kiln::nn
