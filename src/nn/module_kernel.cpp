#include "kiln/nn/module_kernel.h"

#include <algorithm>
#include <mutex>

#include "kiln/core/error.h"
#include "kiln/nn/bf16_linear.h"
#include "kiln/nn/conv_kernel.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/nn/model.h"

namespace kiln::nn {
namespace {

std::mutex& ops_mutex() {
  static std::mutex m;
  return m;
}

torch::Tensor tensor_of(const VariantTensors& tensors, const std::string& name) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) {
    throw ArtifactError("variant tensor '" + name + "' is missing; the variant file is incomplete: run kiln optimize again");
  }
  return it->second;
}

std::map<std::string, VariantOpFactory>& ops() {
  static std::map<std::string, VariantOpFactory> m = [] {
    std::map<std::string, VariantOpFactory> out;
    for (const bool is_static : {false, true}) {
      out[is_static ? "linear_int8_static" : "linear_int8_dynamic"] =
          [is_static](const std::string& module, torch::nn::Module& fp32, const VariantTensors& t) -> std::shared_ptr<ModuleKernel> {
        auto* linear = fp32.as<torch::nn::Linear>();
        if (!linear) throw ArtifactError("variant op linear_int8 names module '" + module + "', which is not a Linear");
        const double in_scale = is_static ? tensor_of(t, module + ".input_scale").item<double>() : 0.0;
        const double out_scale = is_static ? tensor_of(t, module + ".output_scale").item<double>() : 0.0;
        return std::make_shared<Int8LinearKernel>(module, tensor_of(t, module + ".weight_int8"),
                                                  tensor_of(t, module + ".weight_scale"), linear->bias, in_scale,
                                                  out_scale);
      };
    }
    out["linear_bf16"] = [](const std::string& module, torch::nn::Module& fp32,
                            const VariantTensors& t) -> std::shared_ptr<ModuleKernel> {
      auto* linear = fp32.as<torch::nn::Linear>();
      if (!linear) throw ArtifactError("variant op linear_bf16 names module '" + module + "', which is not a Linear");
      return std::make_shared<Bf16LinearKernel>(module, tensor_of(t, module + ".weight_bf16"), linear->bias);
    };
    const auto conv_of = [](const std::string& module, torch::nn::Module& m, const char* op) {
      auto* conv = m.as<torch::nn::Conv2d>();
      if (!conv) throw ArtifactError(std::string("variant op ") + op + " names module '" + module + "', which is not a Conv2d");
      return torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(conv->shared_from_this()));
    };
    out["conv_bn_fp32"] = [conv_of](const std::string& module, torch::nn::Module& fp32,
                                    const VariantTensors& t) -> std::shared_ptr<ModuleKernel> {
      return std::make_shared<ConvBnKernel>(module, conv_of(module, fp32, "conv_bn_fp32"),
                                            tensor_of(t, module + ".weight_folded"), tensor_of(t, module + ".bias_folded"));
    };
    out["conv_bn_bf16"] = [conv_of](const std::string& module, torch::nn::Module& fp32,
                                    const VariantTensors& t) -> std::shared_ptr<ModuleKernel> {
      return std::make_shared<Bf16ConvKernel>(module, conv_of(module, fp32, "conv_bn_bf16"),
                                              tensor_of(t, module + ".weight_folded_bf16"),
                                              tensor_of(t, module + ".bias_folded"));
    };
    out["conv_bn_int8_static"] = [conv_of](const std::string& module, torch::nn::Module& fp32,
                                           const VariantTensors& t) -> std::shared_ptr<ModuleKernel> {
      const auto qparams = [&](const std::string& name) {
        const auto q = tensor_of(t, module + "." + name).to(torch::kFloat32).flatten();
        if (q.numel() != 2) throw ArtifactError("variant tensor '" + module + "." + name + "' must hold {scale, zero point}");
        return QParams{q[0].item<double>(), static_cast<int64_t>(q[1].item<float>())};
      };
      return std::make_shared<Int8ConvKernel>(module, conv_of(module, fp32, "conv_bn_int8_static"),
                                              tensor_of(t, module + ".weight_int8"), tensor_of(t, module + ".weight_scale"),
                                              tensor_of(t, module + ".bias_folded"), qparams("input_qparams"),
                                              qparams("output_qparams"));
    };
    return out;
  }();
  return m;
}

}  // namespace

void register_variant_op(const std::string& name, VariantOpFactory factory) {
  std::lock_guard<std::mutex> lock(ops_mutex());
  ops()[name] = std::move(factory);
}

VariantOpFactory find_variant_op(const std::string& name) {
  std::lock_guard<std::mutex> lock(ops_mutex());
  const auto it = ops().find(name);
  return it == ops().end() ? nullptr : it->second;
}

std::vector<std::string> variant_op_names() {
  std::lock_guard<std::mutex> lock(ops_mutex());
  std::vector<std::string> out;
  for (const auto& [name, f] : ops()) out.push_back(name);
  return out;
}

torch::Tensor Model::forward(const Batch& batch) {
  if (!has_windows(batch)) return classify(embed(batch));
  const FlatWindows flat = flatten_windows(batch);
  return average_windows(classify(embed(flat.windows)), flat.owner, flat.examples);
}

torch::Tensor Model::embed_examples(const Batch& batch) {
  if (!has_windows(batch)) return embed(batch);
  const FlatWindows flat = flatten_windows(batch);
  return average_windows(embed(flat.windows), flat.owner, flat.examples);
}

std::vector<std::pair<std::string, Model*>> Model::nested_models() {
  std::vector<std::pair<std::string, Model*>> out;
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    auto* m = dynamic_cast<Model*>(item.value().get());
    if (!m) continue;
    const bool inside = std::any_of(out.begin(), out.end(), [&](const auto& o) { return item.key().rfind(o.first + ".", 0) == 0; });
    if (!inside) out.emplace_back(item.key(), m);
  }
  return out;
}

void Model::set_kernel(const std::string& module, std::shared_ptr<ModuleKernel> kernel) {
  for (const auto& [prefix, sub] : nested_models()) {
    if (module.rfind(prefix + ".", 0) != 0) continue;
    try {
      sub->set_kernel(module.substr(prefix.size() + 1), std::move(kernel));
      return;
    } catch (const ConfigError&) {
      break;  // reported below with this model's names
    }
  }
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (item.key() != module) continue;
    const torch::nn::Module* m = item.value().get();
    if (!replaceable_.count(m)) break;
    if (kernel) {
      kernels_[m] = {module, std::move(kernel)};
    } else {
      kernels_.erase(m);
    }
    return;
  }
  std::string names;
  for (const auto& n : replaceable_linears()) names += (names.empty() ? "" : ", ") + n;
  for (const auto& n : replaceable_convs()) names += (names.empty() ? "" : ", ") + n;
  throw ConfigError("module '" + module + "' is not a replaceable layer of this model (replaceable: " +
                    (names.empty() ? std::string("none") : names) + ")");
}

void Model::clear_kernels() {
  kernels_.clear();
  for (const auto& [prefix, sub] : nested_models()) sub->clear_kernels();
}

std::map<std::string, std::shared_ptr<ModuleKernel>> Model::kernels() const {
  std::map<std::string, std::shared_ptr<ModuleKernel>> out;
  for (const auto& [m, k] : kernels_) out[k.name] = k.kernel;
  for (const auto& [prefix, sub] : const_cast<Model*>(this)->nested_models()) {
    for (const auto& [name, k] : sub->kernels()) out[prefix + "." + name] = k;
  }
  return out;
}

namespace {

// The replaceable modules of `model` of module type T: its own, then its nested models' (prefixed).
template <typename T>
std::vector<std::string> replaceable_of(const std::set<const torch::nn::Module*>& own, Model& model,
                                        const std::vector<std::pair<std::string, Model*>>& nested,
                                        std::vector<std::string> (Model::*of_sub)()) {
  std::vector<std::string> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (own.count(item.value().get()) && item.value()->as<T>()) out.push_back(item.key());
  }
  for (const auto& [prefix, sub] : nested) {
    for (const auto& n : (sub->*of_sub)()) out.push_back(prefix + "." + n);
  }
  return out;
}

}  // namespace

std::vector<std::string> Model::replaceable_linears() {
  return replaceable_of<torch::nn::Linear>(replaceable_, *this, nested_models(), &Model::replaceable_linears);
}

std::vector<std::string> Model::replaceable_convs() {
  return replaceable_of<torch::nn::Conv2d>(replaceable_, *this, nested_models(), &Model::replaceable_convs);
}

torch::nn::BatchNorm2d Model::batch_norm_after(const std::string& conv) {
  for (const auto& [prefix, sub] : nested_models()) {
    if (conv.rfind(prefix + ".", 0) == 0) {
      try {
        return sub->batch_norm_after(conv.substr(prefix.size() + 1));
      } catch (const ConfigError&) {
        break;
      }
    }
  }
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (item.key() != conv) continue;
    const auto it = bn_after_.find(item.value().get());
    if (it != bn_after_.end()) return it->second;
    break;
  }
  throw ConfigError("module '" + conv + "' is not a convolution followed by a BatchNorm in this model");
}

}  // namespace kiln::nn
