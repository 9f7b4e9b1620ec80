// Forward-pass timing of Kiln's BERT (bench/bert_vs_torch.sh builds and runs this).
//
//   bert_forward THREADS [default|fused] [ROUNDS] [LATENCY_ROUNDS]
//
// BERT-base-size random weights (vocab 30522, 12 layers, hidden 768, 12 heads, intermediate 3072),
// eval mode under InferenceMode, every sequence 128 tokens, no padding. Prints one JSON line:
// {"system", "threads", "throughput_seq_s" (batch 8, best of ROUNDS, default 5), "latency_ms" (batch 1,
// median of LATENCY_ROUNDS, default 15)}. One warm-up forward of each batch size first.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kiln/nn/bert.h"

namespace {

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const bool fused = argc > 2 && std::string(argv[2]) == "fused";
  const int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const int latency_rounds = argc > 4 ? std::max(1, std::atoi(argv[4])) : 15;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  kiln::nn::BertOptions o;  // BertConfig's defaults are bert-base
  o.num_classes = 2;
  kiln::nn::BertModel model(o);
  model.eval();
  model.set_fused_inference(fused);
  torch::InferenceMode guard;
  auto batch_of = [&](int64_t n) {
    kiln::nn::Batch b(n);
    b.set(kiln::nn::kInputIds, torch::randint(1, o.config.vocab_size, {n, 128}, torch::kInt64));
    b.set(kiln::nn::kAttentionMask, torch::ones({n, 128}, torch::kInt64));
    b.set(kiln::nn::kTokenTypeIds, torch::zeros({n, 128}, torch::kInt64));
    return b;
  };
  const auto b8 = batch_of(8), b1 = batch_of(1);
  (void)model.forward(b8);
  (void)model.forward(b1);
  double best = 1e9;
  for (int r = 0; r < rounds; ++r) best = std::min(best, seconds_of([&] { (void)model.forward(b8); }));
  std::vector<double> lat;
  for (int r = 0; r < latency_rounds; ++r) lat.push_back(seconds_of([&] { (void)model.forward(b1); }));
  std::sort(lat.begin(), lat.end());
  std::printf("{\"system\": \"kiln%s\", \"threads\": %d, \"throughput_seq_s\": %.2f, \"latency_ms\": %.2f}\n",
              fused ? "-fused" : "", threads, 8.0 / best, 1000.0 * lat[lat.size() / 2]);
  return 0;
}
