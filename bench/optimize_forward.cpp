// Kiln fp32 vs Kiln int8 (kiln optimize's dynamic int8 kernels) forward timing, and the ONNX files
// ONNX Runtime runs for comparison (bench/optimize_vs_onnxruntime.sh builds and runs this).
//
//   optimize_forward THREADS FAMILY SIZE OUT_DIR [ROUNDS] [LATENCY_ROUNDS]
//     FAMILY bert: SIZE a preset (mini, base, ...); batch 8 x 128 tokens, latency batch 1 x 128
//     FAMILY mlp:  SIZE the hidden width; 50000 sparse features, hidden [SIZE, SIZE], 30 nonzeros per
//                  row, batch 32, latency batch 1
// Random weights (seed 0), eval mode under InferenceMode. Writes OUT_DIR/model.onnx (kiln export's
// graph of the same weights) and OUT_DIR/inputs.json (the throughput and latency batches as ONNX
// inputs), then prints one JSON line per system (kiln-fp32, kiln-int8): {"system", "family", "size",
// "threads", "throughput" (examples/s, best of ROUNDS), "latency_ms" (batch 1, median of
// LATENCY_ROUNDS)}.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/export/onnx.h"
#include "kiln/nn/bert.h"
#include "kiln/nn/int8_linear.h"

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
  {
    std::ofstream(out + "/model.onnx", std::ios::binary) << kiln::onnx::export_onnx(a, {});
    nlohmann::json in;
    for (const auto& [n, t] : kiln::onnx::onnx_inputs(a, big)) in["throughput"][n] = flat(t);
    for (const auto& [n, t] : kiln::onnx::onnx_inputs(a, one)) in["latency"][n] = flat(t);
    std::ofstream(out + "/inputs.json") << in.dump();
  }
  torch::InferenceMode guard;
  for (const std::string mode : {"fp32", "int8"}) {
    if (mode == "int8") {
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
