// The Conv+BN pass of kiln optimize: BatchNorm folded into the preceding convolution (fp32); with
// --bf16 the folded convolution runs in bfloat16, and with --int8 static it is quantized (per-channel int8 weights, calibrated
// per-tensor quint8 activations, the ReLU fused into the quantized op).
#include <map>
#include <set>

#include "kiln/core/error.h"
#include "kiln/nn/conv_kernel.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/optimize/optimize.h"
#include "passes.h"

namespace kiln::optimize {
namespace {

// Runs a Conv+BN pair in fp32 and records its input range (and whether it is ever negative) and its
// output range (after the ReLU when the family fuses one).
class ConvObserver : public nn::ModuleKernel {
 public:
  ConvObserver(torch::nn::Conv2d conv, torch::nn::BatchNorm2d bn) : conv_(std::move(conv)), bn_(std::move(bn)) {}
  torch::Tensor forward(const torch::Tensor& x) override { return observe(x, false); }
  torch::Tensor forward_relu(const torch::Tensor& x) override { return observe(x, true); }
  std::string op() const override { return "observer"; }
  void start_histogram_pass() { histogram_pass_ = true; }
  RangeObserver input, output;
  bool input_negative = false, relu = false;

 private:
  torch::Tensor observe(const torch::Tensor& x, bool with_relu) {
    auto y = bn_->forward(conv_->forward(x));
    if (with_relu) y = torch::relu(y);
    relu = with_relu;
    if (histogram_pass_) {
      input.observe_histogram(x);
      output.observe_histogram(y);
    } else {
      input_negative = input_negative || (x.numel() > 0 && x.min().item<float>() < 0);
      input.observe_max(x);
      output.observe_max(y);
    }
    return y;
  }
  torch::nn::Conv2d conv_;
  torch::nn::BatchNorm2d bn_;
  bool histogram_pass_ = false;
};

torch::Tensor qparams_tensor(const nn::QParams& q) {
  return torch::tensor({static_cast<float>(q.scale), static_cast<float>(q.zero_point)});
}

class ConvBnPass : public OptimizePass {
 public:
  std::string name() const override { return "conv_bn"; }

  void run(nn::Model& model, const std::vector<nn::Batch>& calibration, const OptimizeOptions& options,
           QuantizedVariant& out) override {
    const auto names = model.replaceable_convs();
    if (names.empty()) return;
    std::map<std::string, torch::nn::Conv2d> convs;
    for (const auto& item : model.named_modules("", false)) {
      if (item.value()->as<torch::nn::Conv2d>()) {
        convs.emplace(item.key(), torch::nn::Conv2d(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(item.value())));
      }
    }
    const std::set<std::string> keep(options.keep_fp32.begin(), options.keep_fp32.end());
    const bool int8 = options.precision == Precision::kInt8 && options.int8 == Int8Mode::kStatic;
    const bool bf16 = options.precision == Precision::kBf16;
    std::map<std::string, std::shared_ptr<ConvObserver>> observers;
    if (int8) {
      for (const auto& n : names) {
        if (keep.count(n)) continue;
        observers[n] = std::make_shared<ConvObserver>(convs.at(n), model.batch_norm_after(n));
        model.set_kernel(n, observers[n]);
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
    for (const auto& n : names) {
      auto [w, b] = nn::fold_conv_bn(convs.at(n), model.batch_norm_after(n));
      LayerDecision d;
      d.module = n;
      out.tensors.emplace_back(n + ".bias_folded", b);
      if (bf16 && !keep.count(n)) {
        d.op = "conv_bn_bf16";
        out.tensors.emplace_back(n + ".weight_folded_bf16", w.to(torch::kBFloat16).contiguous());
      } else if (!int8 || keep.count(n)) {
        d.op = "conv_bn_fp32";
        if (keep.count(n)) d.reason = "--keep-fp32 (BatchNorm still folded)";
        out.tensors.emplace_back(n + ".weight_folded", w);
      } else {
        const auto& o = *observers.at(n);
        d.op = "conv_bn_int8_static";
        d.input_threshold = o.input.threshold(options.calibrator, options.percentile);
        d.output_threshold = o.output.threshold(options.calibrator, options.percentile);
        auto [wq, ws] = nn::quantize_weight_per_channel(w.reshape({w.size(0), -1}));
        out.tensors.emplace_back(n + ".weight_int8", wq.reshape(w.sizes()).contiguous());
        out.tensors.emplace_back(n + ".weight_scale", ws.to(torch::kFloat32));
        out.tensors.emplace_back(n + ".input_qparams",
                                 qparams_tensor(nn::activation_qparams(d.input_threshold, !o.input_negative)));
        out.tensors.emplace_back(n + ".output_qparams", qparams_tensor(nn::activation_qparams(d.output_threshold, o.relu)));
      }
      out.variant.details["modules"][n] = d.op;
      out.layers.push_back(d);
      add_variant_op(out.variant, d.op);
    }
    out.variant.details["conv_bn"] = "BatchNorm folded into each convolution (W' = W*gamma/sqrt(var+eps), "
                                     "b' = (b-mean)*gamma/sqrt(var+eps)+beta), ReLU fused";
    out.variant.details["conv_bn_precision"] =
        bf16   ? "bf16: folded weights and activations in bfloat16 (channels-last, oneDNN), float32 after the trunk"
        : int8 ? "int8: per-channel weights, calibrated per-tensor activations"
               : "fp32: int8 convolutions need --int8 static (activations calibrated on the held-out images)";
  }
};

}  // namespace

std::unique_ptr<OptimizePass> make_conv_bn_pass() { return std::make_unique<ConvBnPass>(); }

}  // namespace kiln::optimize
