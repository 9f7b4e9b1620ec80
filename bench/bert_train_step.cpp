// Training-step timing of Kiln's BERT (bench/bert_train_vs_torch.sh builds and runs this).
//
//   bert_train_step THREADS [PRESET] [BATCH] [SEQ] [ROUNDS]
//
// Random weights of the preset's size (default mini; vocab 30522, 2 classes), dropout 0, every
// sequence SEQ tokens (default 128), batch BATCH (default 32). One step is what kiln train does per
// batch: forward, cross-entropy, backward, global-norm clipping at 1, AdamW (weight decay 0.01 off
// biases and LayerNorm weights). Two warm-up steps, then the median of ROUNDS (default 5). Prints
// one JSON line: {"system", "threads", "preset", "batch", "seq", "step_ms", "peak_rss_mib"}.
#include <torch/torch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kiln/nn/bert.h"
#include "kiln/train/optimizer.h"

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const std::string preset = argc > 2 ? argv[2] : "mini";
  const int64_t batch = argc > 3 ? std::atoll(argv[3]) : 32;
  const int64_t seq = argc > 4 ? std::atoll(argv[4]) : 128;
  const int rounds = argc > 5 ? std::max(1, std::atoi(argv[5])) : 5;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  kiln::nn::BertOptions o;
  kiln::nn::apply_bert_preset(preset, o.config);
  o.config.hidden_dropout_prob = 0;
  o.config.attention_probs_dropout_prob = 0;
  o.classifier_dropout = 0;
  o.num_classes = 2;
  kiln::nn::BertModel model(o);
  model.train();
  std::vector<torch::Tensor> params;
  std::vector<bool> no_decay;
  for (const auto& item : model.named_parameters()) {
    params.push_back(item.value());
    no_decay.push_back(model.weight_decay_exempt(item.key()));
  }
  kiln::train::OptimizerOptions oo;
  oo.lr = 1e-4;
  oo.weight_decay = 0.01;
  auto optimizer = kiln::train::make_optimizer(params, oo, no_decay);
  kiln::nn::Batch b(batch);
  b.set(kiln::nn::kInputIds, torch::randint(1, o.config.vocab_size, {batch, seq}, torch::kInt64));
  b.set(kiln::nn::kAttentionMask, torch::ones({batch, seq}, torch::kInt64));
  b.set(kiln::nn::kTokenTypeIds, torch::zeros({batch, seq}, torch::kInt64));
  const auto target = torch::randint(0, 2, {batch}, torch::kInt64);
  auto step = [&] {
    kiln::train::clear_gradients(params);
    auto loss = torch::nn::functional::cross_entropy(model.forward(b), target);
    loss.backward();
    (void)kiln::train::clip_grad_norm(params, 1.0);
    optimizer->step();
  };
  step();
  step();
  std::vector<double> times;
  for (int r = 0; r < rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("{\"system\": \"kiln\", \"threads\": %d, \"preset\": \"%s\", \"batch\": %lld, \"seq\": %lld, "
              "\"step_ms\": %.1f, \"peak_rss_mib\": %.0f}\n",
              threads, preset.c_str(), static_cast<long long>(batch), static_cast<long long>(seq),
              1000.0 * times[times.size() / 2], static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
