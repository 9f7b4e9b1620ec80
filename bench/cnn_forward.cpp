// Kiln CNN forward throughput (eval, InferenceMode), for bench/cnn_vs_torch.sh and
// bench/resnet_vs_torch.sh, which build and run it.
//
//   cnn_forward THREADS artifact DIR CSV BATCH ROUNDS
//     the artifact's model on the images of CSV (image,label; encoded once, before timing), batches
//     of BATCH over the whole file; prints {"system": "kiln", "images_per_second": best of ROUNDS}
//   cnn_forward THREADS resnet18 SIZE OUT_DIR BATCH ROUNDS
//     the `cnn` family's resnet18 preset (torchvision's layout), random weights (seed 0), 3 x SIZE x
//     SIZE inputs, 10 classes; writes OUT_DIR/model.safetensors (torchvision's names) for the
//     python3-torch side and, when `kiln export` supports the family, OUT_DIR/model.onnx; prints
//     {"system": "kiln", "size": SIZE, "images_per_second": best of ROUNDS}
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"
#include "kiln/data/dataset.h"
#include "kiln/export/onnx.h"
#include "kiln/nn/model_spec.h"

namespace {

double best_rate(const std::function<void()>& pass, int64_t images, int rounds) {
  pass();  // warm-up
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pass();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(images) / s);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: cnn_forward THREADS artifact DIR CSV BATCH ROUNDS | THREADS resnet18 SIZE OUT BATCH ROUNDS\n");
    return 2;
  }
  try {
    torch::set_num_threads(std::atoi(argv[1]));
    const std::string mode = argv[2];
    const int64_t batch = std::max(1, std::atoi(argv[5]));
    const int rounds = std::max(1, std::atoi(argv[6]));
    if (mode == "artifact") {
      kiln::artifact::Predictor p(argv[3]);
      kiln::data::LoadOptions lo;
      lo.text_col = "";
      lo.image_col = "image";
      const auto ds = kiln::data::load_labeled(argv[4], lo, nullptr);
      const torch::Tensor x = p.encode(ds).get(kiln::nn::kPixelValues);  // forward() runs under InferenceMode
      const int64_t n = x.size(0);
      const double rate = best_rate([&] {
        for (int64_t i = 0; i < n; i += batch) {
          kiln::nn::Batch b;
          b.set(kiln::nn::kPixelValues, x.slice(0, i, std::min(n, i + batch)));
          (void)p.forward(b);
        }
      }, n, rounds);
      std::printf("%s\n", nlohmann::json{{"system", "kiln"}, {"images", n}, {"images_per_second", rate}}.dump().c_str());
      return 0;
    }
    const int64_t size = std::stoll(argv[3]);
    const std::string out = argv[4];
    torch::manual_seed(0);
    kiln::nn::InputSpec spec;
    spec.tensors.push_back({kiln::nn::kPixelValues, "float32", {"batch", "3", std::to_string(size), std::to_string(size)}, 0});
    kiln::artifact::Artifact a;
    kiln::nn::ModelSpec m;
    m.family = "cnn";
    m.params = {{"preset", "resnet18"}};
    a.manifest.model = kiln::nn::resolve_spec(m);
    a.model = kiln::nn::make_model(a.manifest.model, spec, 10);
    a.manifest.labels = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    a.model->eval();
    std::vector<torch::Tensor> keep;
    std::vector<std::pair<std::string, kiln::core::TensorView>> views;
    auto add = [&](const std::string& name, const torch::Tensor& t) {
      if (t.scalar_type() != torch::kFloat) return;  // num_batches_tracked: torch's load does not need it
      keep.push_back(t.contiguous());
      const auto& c = keep.back();
      views.emplace_back(name, kiln::core::TensorView{kiln::core::DType::kF32, c.sizes().vec(),
                                                      reinterpret_cast<const std::byte*>(c.data_ptr<float>()),
                                                      static_cast<std::size_t>(c.numel()) * sizeof(float)});
    };
    for (const auto& kv : a.model->named_parameters()) add(kv.key(), kv.value());
    for (const auto& kv : a.model->named_buffers()) add(kv.key(), kv.value());
    kiln::core::save_safetensors(out + "/model.safetensors", views);
    kiln::nn::Batch b;
    b.set(kiln::nn::kPixelValues, torch::randn({batch, 3, size, size}));
    try {  // ONNX Runtime's side, once kiln export covers the cnn family
      const std::string onnx = kiln::onnx::export_onnx(a, {});
      std::ofstream(out + "/model.onnx", std::ios::binary) << onnx;
      auto flat = [](const torch::Tensor& t) {
        const auto c = t.contiguous();
        return nlohmann::json{{"dims", c.sizes().vec()},
                              {"data", std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())}};
      };
      const torch::Tensor x = b.get(kiln::nn::kPixelValues);
      std::ofstream(out + "/inputs.json") << nlohmann::json{{"throughput", {{kiln::nn::kPixelValues, flat(x)}}},
                                                            {"latency", {{kiln::nn::kPixelValues, flat(x.slice(0, 0, 1))}}}}
                                                 .dump();
    } catch (const kiln::Error& e) {
      std::fprintf(stderr, "kiln export: %s\n", e.what());
    }
    const double rate = best_rate([&] {
      torch::InferenceMode guard;
      (void)a.model->forward(b);
    }, batch, rounds);
    std::printf("%s\n", nlohmann::json{{"system", "kiln"}, {"size", size}, {"batch", batch}, {"images_per_second", rate}}.dump().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cnn_forward: %s\n", e.what());
    return 1;
  }
}
