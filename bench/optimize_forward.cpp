// Kiln fp32 vs Kiln int8 (kiln optimize's dynamic int8 kernels) forward timing, and the ONNX files
// ONNX Runtime runs for comparison (bench/optimize_vs_onnxruntime.sh builds and runs this).
//
//   optimize_forward THREADS FAMILY SIZE OUT_DIR [ROUNDS] [LATENCY_ROUNDS]
//     FAMILY bert: SIZE a preset (mini, base, ...); batch 8 x 128 tokens, latency batch 1 x 128
//     FAMILY mlp:  SIZE the hidden width; 50000 sparse features, hidden [SIZE, SIZE], 30 nonzeros per
//                  row, batch 32, latency batch 1
//     FAMILY cnn:  SIZE the image side (64, 224); the resnet18 layout, 3 channels, batch 8, latency
//                  batch 1, random BatchNorm statistics; systems kiln-fp32 (unfused), kiln-fused (BN
//                  folded, ReLU fused, fp32) and kiln-int8 (folded + int8 static convolutions,
//                  calibrated by entropy on 32 random images), and on a CPU with bf16 kiln-bf16
//                  (folded bf16 convolutions, kiln optimize --bf16)
// With KILN_BENCH_BF16=1 on a CPU with bf16, also kiln-bf16 (kiln optimize --bf16's linear_bf16 kernels).
// KILN_BENCH_MODES=int8,fused (a comma list of fp32, fused, int8, bf16) runs only those systems.
//     FAMILY linear: SIZE "IN,OUT": one Linear layer IN -> OUT (a dense input), batch 32 / batch 1:
//                  where dynamic int8 starts to pay (bench/int8_threshold.sh)
// Random weights (seed 0), eval mode under InferenceMode. Writes OUT_DIR/model.onnx (kiln export's
// graph of the same weights) and OUT_DIR/inputs.json (the throughput and latency batches as ONNX
// inputs), then prints one JSON line per system (kiln-fp32, kiln-int8): {"system", "family", "size",
// "threads", "throughput" (examples/s, best of ROUNDS), "latency_ms" (batch 1, median of
// LATENCY_ROUNDS)}.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/export/onnx.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/bf16_linear.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/optimize/optimize.h"

namespace {

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::json flat(const torch::Tensor& t) {
  const auto c = t.contiguous();
  nlohmann::json j;
  j["dims"] = c.sizes().vec();
  if (c.scalar_type() == torch::kFloat32) {
    j["data"] = std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  } else {
    j["data"] = std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  }
  return j;
}

kiln::nn::Batch bag_batch(int64_t rows, int64_t features, int64_t nnz_per_row) {
  kiln::nn::Batch b(rows);
  b.set(kiln::nn::kBagIndices, torch::randint(0, features, {rows * nnz_per_row}, torch::kLong));
  b.set(kiln::nn::kBagOffsets, torch::arange(0, rows * nnz_per_row, nnz_per_row, torch::kLong));
  b.set(kiln::nn::kBagWeights, torch::rand({rows * nnz_per_row}) * 0.3);
  return b;
}

kiln::nn::Batch pixel_batch(int64_t rows, int64_t side) {
  kiln::nn::Batch b(rows);
  b.set(kiln::nn::kPixelValues, torch::randn({rows, 3, side, side}));
  return b;
}

// A one-layer model: logits = Linear(features) over a dense input (bag rows as dense features).
class DenseLinear : public kiln::nn::Model {
 public:
  DenseLinear(int64_t in, int64_t out) : Model(out) {
    layer_ = register_module("layer", torch::nn::Linear(in, out));
    mark_replaceable(layer_);
  }
  torch::Tensor embed(const kiln::nn::Batch& b) override { return b.at(kiln::nn::kPixelValues); }
  torch::Tensor classify(const torch::Tensor& x) override { return run_linear(layer_, x); }
  int64_t embedding_dim() const override { return layer_->weight.size(1); }

 private:
  torch::nn::Linear layer_{nullptr};
};

kiln::nn::Batch bert_batch(int64_t rows, int64_t length, int64_t vocab) {
  kiln::nn::Batch b(rows);
  b.set(kiln::nn::kInputIds, torch::randint(1, vocab, {rows, length}, torch::kLong));
  b.set(kiln::nn::kAttentionMask, torch::ones({rows, length}, torch::kLong));
  b.set(kiln::nn::kTokenTypeIds, torch::zeros({rows, length}, torch::kLong));
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: optimize_forward THREADS bert|mlp SIZE OUT_DIR [ROUNDS] [LATENCY_ROUNDS]\n");
    return 2;
  }
  const int threads = std::atoi(argv[1]);
  const std::string family = argv[2], size = argv[3], out = argv[4];
  const int rounds = argc > 5 ? std::max(1, std::atoi(argv[5])) : 5;
  const int latency_rounds = argc > 6 ? std::max(1, std::atoi(argv[6])) : 15;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  kiln::artifact::Artifact a;
  kiln::nn::Batch big, one;
  if (family == "bert") {
    kiln::nn::BertOptions o;
    kiln::nn::apply_bert_preset(size, o.config);
    o.num_classes = 4;
    a.model = std::make_shared<kiln::nn::BertModel>(o);
    a.manifest.model.family = "bert";
    big = bert_batch(8, 128, o.config.vocab_size);
    one = bert_batch(1, 128, o.config.vocab_size);
  } else if (family == "cnn") {
    const int64_t side = std::stoll(size);
    kiln::nn::InputSpec spec;
    spec.tensors.push_back({kiln::nn::kPixelValues, "float32", {"batch", "3", size, size}, 0});
    kiln::nn::ModelSpec m;
    m.family = "cnn";
    m.params = {{"preset", "resnet18"}};
    a.manifest.model = kiln::nn::resolve_spec(m);
    a.model = kiln::nn::make_model(a.manifest.model, spec, 4);
    torch::NoGradGuard g;
    for (auto& b : a.model->named_buffers()) {
      if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.1, 0.1);
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
    }
    big = pixel_batch(8, side);
    one = pixel_batch(1, side);
  } else if (family == "linear") {
    const auto comma = size.find(',');
    const int64_t in = std::stoll(size.substr(0, comma)), outs = std::stoll(size.substr(comma + 1));
    a.model = std::make_shared<DenseLinear>(in, outs);
    a.manifest.model.family = "dense";
    big = kiln::nn::Batch(32);
    big.set(kiln::nn::kPixelValues, torch::randn({32, in}));
    one = kiln::nn::Batch(1);
    one.set(kiln::nn::kPixelValues, torch::randn({1, in}));
  } else {
    const int64_t features = 50000, width = std::stoll(size);
    kiln::nn::InputSpec spec;
    spec.tensors.push_back({kiln::nn::kBagIndices, "int64", {"nnz"}, features});
    spec.tensors.push_back({kiln::nn::kBagOffsets, "int64", {"batch"}, 0});
    spec.tensors.push_back({kiln::nn::kBagWeights, "float32", {"nnz"}, 0});
    kiln::nn::ModelSpec m;
    m.family = "mlp";
    m.params = {{"hidden", {width, width, width}}, {"dropout", 0.0}};
    a.manifest.model = kiln::nn::resolve_spec(m);
    a.model = kiln::nn::make_model(a.manifest.model, spec, 4);
    big = bag_batch(32, features, 30);
    one = bag_batch(1, features, 30);
  }
  a.manifest.labels = {"a", "b", "c", "d"};
  a.model->eval();
  if (family != "linear") {
    std::ofstream(out + "/model.onnx", std::ios::binary) << kiln::onnx::export_onnx(a, {});
    nlohmann::json in;
    for (const auto& [n, t] : kiln::onnx::onnx_inputs(a, big)) in["throughput"][n] = flat(t);
    for (const auto& [n, t] : kiln::onnx::onnx_inputs(a, one)) in["latency"][n] = flat(t);
    std::ofstream(out + "/inputs.json") << in.dump();
  }
  // The variants: kiln optimize's passes on the same weights (cnn: fused fp32, then folded int8).
  std::vector<std::pair<std::string, kiln::optimize::QuantizedVariant>> variants;
  if (family == "cnn") {
    std::vector<kiln::nn::Batch> calibration = {pixel_batch(16, std::stoll(size)), pixel_batch(16, std::stoll(size))};
    std::vector<std::string> names = {"fused", "int8"};
    if (kiln::nn::cpu_has_bf16()) names.push_back("bf16");
    for (const auto& name : names) {
      kiln::optimize::OptimizeOptions o;
      o.int8 = name == "int8" ? kiln::optimize::Int8Mode::kStatic : kiln::optimize::Int8Mode::kDynamic;
      if (name == "bf16") o.precision = kiln::optimize::Precision::kBf16;
      kiln::optimize::QuantizedVariant v;
      kiln::optimize::make_conv_bn_pass()->run(*a.model, calibration, o, v);
      variants.emplace_back(name, std::move(v));
    }
  }
  torch::InferenceMode guard;
  std::vector<std::string> modes = {"fp32", "int8"};
  if (kiln::nn::cpu_has_bf16() && std::getenv("KILN_BENCH_BF16")) modes.push_back("bf16");
  if (family == "cnn") {
    modes = {"fp32", "fused", "int8"};
    if (kiln::nn::cpu_has_bf16()) modes.push_back("bf16");
  }
  if (const char* only = std::getenv("KILN_BENCH_MODES")) {  // e.g. "int8" (to profile one system)
    const std::string list = std::string(",") + only + ",";
    modes.erase(std::remove_if(modes.begin(), modes.end(),
                               [&](const std::string& m) { return list.find("," + m + ",") == std::string::npos; }),
                modes.end());
  }
  for (const std::string& mode : modes) {
    if (family == "cnn" && mode != "fp32") {
      a.model->clear_kernels();
      for (const auto& [name, v] : variants) {
        if (name != mode) continue;
        kiln::nn::VariantTensors t;
        for (const auto& [n, x] : v.tensors) t[n] = x;
        for (const auto& [module, op] : v.variant.details["modules"].items()) {
          torch::nn::Module& m = *a.model->named_modules()[module];
          a.model->set_kernel(module, kiln::nn::find_variant_op(op.get<std::string>())(module, m, t));
        }
      }
    } else if (mode == "bf16") {
      a.model->clear_kernels();
      for (const auto& name : a.model->replaceable_linears()) {
        torch::nn::Linear l(std::dynamic_pointer_cast<torch::nn::LinearImpl>(a.model->named_modules()[name]));
        a.model->set_kernel(name, std::make_shared<kiln::nn::Bf16LinearKernel>(name, l->weight.to(torch::kBFloat16), l->bias));
      }
    } else if (mode == "int8") {
      for (const auto& name : a.model->replaceable_linears()) {
        torch::nn::Linear l(std::dynamic_pointer_cast<torch::nn::LinearImpl>(a.model->named_modules()[name]));
        auto [q, s] = kiln::nn::quantize_weight_per_channel(l->weight);
        a.model->set_kernel(name, std::make_shared<kiln::nn::Int8LinearKernel>(name, q, s, l->bias));
      }
    }
    (void)a.model->forward(big);
    (void)a.model->forward(one);
    double best = 1e30;
    for (int r = 0; r < rounds; ++r) best = std::min(best, seconds_of([&] { (void)a.model->forward(big); }));
    std::vector<double> lat;
    for (int r = 0; r < latency_rounds; ++r) lat.push_back(seconds_of([&] { (void)a.model->forward(one); }) * 1000.0);
    std::sort(lat.begin(), lat.end());
    std::printf("{\"system\": \"kiln-%s\", \"family\": \"%s\", \"size\": \"%s\", \"threads\": %d, \"throughput\": %.3f, "
                "\"latency_ms\": %.3f}\n",
                mode.c_str(), family.c_str(), size.c_str(), threads, static_cast<double>(big.size()) / best,
                lat[lat.size() / 2]);
    std::fflush(stdout);
  }
  return 0;
}
