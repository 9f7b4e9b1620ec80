// The Linear passes of kiln optimize: int8 (dynamic, or static with calibrated ranges) and bf16.
#include <map>
#include <set>

#include "kiln/core/error.h"
#include "kiln/nn/bf16_linear.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/optimize/optimize.h"
#include "passes.h"

namespace kiln::optimize {
namespace {

// Records a Linear's input and output ranges while running it in fp32 (static calibration).
class ObserverKernel : public nn::ModuleKernel {
 public:
  explicit ObserverKernel(torch::nn::Linear layer) : layer_(std::move(layer)) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    auto y = layer_->forward(x);
    if (histogram_pass_) {
      input.observe_histogram(x);
      output.observe_histogram(y);
    } else {
      input.observe_max(x);
      output.observe_max(y);
    }
    return y;
  }
  std::string op() const override { return "observer"; }
  void start_histogram_pass() { histogram_pass_ = true; }
  RangeObserver input, output;

 private:
  torch::nn::Linear layer_;
  bool histogram_pass_ = false;
};

std::map<std::string, torch::nn::Linear> linears_of(nn::Model& model) {
  std::map<std::string, torch::nn::Linear> out;
  for (const auto& item : model.named_modules("", false)) {
    if (item.value()->as<torch::nn::Linear>()) {
      out.emplace(item.key(), torch::nn::Linear(std::dynamic_pointer_cast<torch::nn::LinearImpl>(item.value())));
    }
  }
  return out;
}

void add_op(artifact::Variant& v, const std::string& op) {
  if (std::find(v.ops.begin(), v.ops.end(), op) == v.ops.end()) v.ops.push_back(op);
}

class Int8LinearPass : public OptimizePass {
 public:
  std::string name() const override { return "int8_linear"; }

  void run(nn::Model& model, const std::vector<nn::Batch>& calibration, const OptimizeOptions& options,
           QuantizedVariant& out) override {
    const auto names = model.replaceable_linears();
    const std::set<std::string> keep(options.keep_fp32.begin(), options.keep_fp32.end());
    const auto linears = linears_of(model);
    const auto small = [&](const std::string& n) { return linears.at(n)->weight.numel() < options.min_int8_weights; };
    const bool is_static = options.int8 == Int8Mode::kStatic;
    std::map<std::string, std::shared_ptr<ObserverKernel>> observers;
    if (is_static) {
      for (const auto& n : names) {
        if (keep.count(n) || small(n)) continue;
        auto obs = std::make_shared<ObserverKernel>(linears.at(n));
        observers[n] = obs;
        model.set_kernel(n, obs);
      }
      torch::InferenceMode guard;
      const bool need_hist = options.calibrator != CalibratorKind::kMinMax;
      for (int pass = 0; pass < (need_hist ? 2 : 1) && !observers.empty(); ++pass) {
        if (pass == 1) {
          for (auto& [n, o] : observers) o->start_histogram_pass();
        }
        for (const auto& b : calibration) (void)model.forward(b);
      }
      model.clear_kernels();
    }
    const std::string op = is_static ? "linear_int8_static" : "linear_int8_dynamic";
    for (const auto& n : names) {
      LayerDecision d;
      d.module = n;
      const auto& w = linears.at(n)->weight;
      if (keep.count(n) || small(n)) {
        d.op = "fp32";
        d.reason = keep.count(n) ? "--keep-fp32"
                                 : "small: " + std::to_string(w.size(1)) + " x " + std::to_string(w.size(0)) + " = " +
                                       std::to_string(w.numel()) + " weights < --min-int8-weights " +
                                       std::to_string(options.min_int8_weights) + " (int8 is slower than fp32 there)";
        out.layers.push_back(d);
        continue;
      }
      auto [wq, ws] = nn::quantize_weight_per_channel(w);
      out.tensors.emplace_back(n + ".weight_int8", wq);
      out.tensors.emplace_back(n + ".weight_scale", ws.to(torch::kFloat32));
      if (is_static) {
        const auto& o = *observers.at(n);
        d.input_threshold = o.input.threshold(options.calibrator, options.percentile);
        d.output_threshold = o.output.threshold(options.calibrator, options.percentile);
        const auto scale = [](double t) { return torch::full({1}, static_cast<float>(t > 0 ? t / 127.0 : 1.0 / 127.0)); };
        out.tensors.emplace_back(n + ".input_scale", scale(d.input_threshold));
        out.tensors.emplace_back(n + ".output_scale", scale(d.output_threshold));
      }
      d.op = op;
      out.variant.details["modules"][n] = op;
      out.layers.push_back(d);
      add_op(out.variant, op);
    }
  }
};

class Bf16LinearPass : public OptimizePass {
 public:
  std::string name() const override { return "bf16_linear"; }

  void run(nn::Model& model, const std::vector<nn::Batch>&, const OptimizeOptions& options, QuantizedVariant& out) override {
    const std::set<std::string> keep(options.keep_fp32.begin(), options.keep_fp32.end());
    const auto linears = linears_of(model);
    for (const auto& n : model.replaceable_linears()) {
      LayerDecision d;
      d.module = n;
      if (keep.count(n)) {
        d.op = "fp32";
        d.reason = "--keep-fp32";
        out.layers.push_back(d);
        continue;
      }
      out.tensors.emplace_back(n + ".weight_bf16", linears.at(n)->weight.detach().to(torch::kBFloat16).contiguous());
      d.op = "linear_bf16";
      out.variant.details["modules"][n] = d.op;
      out.layers.push_back(d);
      add_op(out.variant, d.op);
    }
  }
};

}  // namespace

void add_variant_op(artifact::Variant& variant, const std::string& op) { add_op(variant, op); }

std::unique_ptr<OptimizePass> make_int8_linear_pass() { return std::make_unique<Int8LinearPass>(); }
std::unique_ptr<OptimizePass> make_bf16_linear_pass() { return std::make_unique<Bf16LinearPass>(); }

}  // namespace kiln::optimize
