// Masked-language-model pretraining (include/kiln/train/pretrain.h).
#include "kiln/train/pretrain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "checkpoint.h"
#include "metrics_log.h"
#include "kiln/core/error.h"
#include "kiln/train/data_parallel.h"

namespace fs = std::filesystem;

namespace kiln::train {
namespace {

constexpr double kNoLoss = std::numeric_limits<double>::quiet_NaN();

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// The permutation of epoch `epoch` (1-based), a pure function of (seed, epoch) as the trainer's.
std::vector<int64_t> sequence_order(int64_t n, uint64_t seed, int epoch) {
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t j = rng() % static_cast<uint64_t>(i + 1);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

void validate_masking(const MlmMaskingOptions& m) {
  auto fail = [](const std::string& field, const std::string& rule, double got) {
    std::ostringstream os;
    os << "pretrain.masking." << field << " must be " << rule << ", got " << got;
    throw ConfigError(os.str());
  };
  if (!(m.mask_prob > 0 && m.mask_prob < 1)) fail("mask_prob", "in (0, 1)", m.mask_prob);
  if (!(m.mask_replace_prob >= 0 && m.mask_replace_prob <= 1)) fail("mask_replace_prob", "in [0, 1]", m.mask_replace_prob);
  if (!(m.random_replace_prob >= 0 && m.random_replace_prob <= 1 - m.mask_replace_prob + 1e-12)) {
    fail("random_replace_prob", "in [0, 1 - mask_replace_prob]", m.random_replace_prob);
  }
}

}  // namespace

MlmBatch mask_tokens(const torch::Tensor& ids_in, const MlmVocab& vocab, const MlmMaskingOptions& options, uint64_t seed) {
  validate_masking(options);
  if (ids_in.dim() != 2 || ids_in.scalar_type() != torch::kInt64) {
    throw DataError("mask_tokens: ids must be int64 [batch, sequence]");
  }
  if (vocab.mask_id < 0 || vocab.mask_id >= vocab.size) {
    throw ConfigError("mask_tokens: the vocabulary has no [MASK] token; masked-LM pretraining needs one (add a line "
                      "[MASK] to vocab.txt)");
  }
  std::vector<bool> special(static_cast<std::size_t>(vocab.size), false);
  for (auto id : vocab.special_ids) {
    if (id >= 0 && id < vocab.size) special[static_cast<std::size_t>(id)] = true;
  }
  std::vector<int64_t> ordinary;  // ids a random replacement is drawn from
  for (int64_t id = 0; id < vocab.size; ++id) {
    if (!special[static_cast<std::size_t>(id)]) ordinary.push_back(id);
  }
  if (ordinary.empty()) throw ConfigError("mask_tokens: the vocabulary holds special tokens only");

  MlmBatch out;
  out.input_ids = ids_in.contiguous().clone();
  out.labels = torch::full_like(out.input_ids, kMlmIgnore);
  const int64_t rows = out.input_ids.size(0), length = out.input_ids.size(1);
  int64_t* ip = out.input_ids.data_ptr<int64_t>();
  int64_t* lp = out.labels.data_ptr<int64_t>();
  std::mt19937_64 rng(seed ^ 0xD1B54A32D192ED03ULL);
  std::vector<int64_t> candidates;
  std::vector<std::pair<int64_t, int64_t>> words;  // [first, last) positions
  std::vector<char> chosen(static_cast<std::size_t>(length));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t* row = ip + r * length;
    candidates.clear();
    for (int64_t t = 0; t < length; ++t) {
      const int64_t id = row[t];
      if (id < 0 || id >= vocab.size) {
        throw DataError("mask_tokens: id " + std::to_string(id) + " at row " + std::to_string(r) + " is outside the "
                        "vocabulary of " + std::to_string(vocab.size));
      }
      if (!special[static_cast<std::size_t>(id)]) candidates.push_back(t);
    }
    std::fill(chosen.begin(), chosen.end(), 0);
    if (candidates.empty()) continue;
    if (options.whole_word) {
      words.clear();
      for (auto t : candidates) {
        const bool cont = !vocab.continuation.empty() && vocab.continuation[static_cast<std::size_t>(row[t])];
        if (cont && !words.empty() && words.back().second == t) {
          words.back().second = t + 1;
        } else {
          words.emplace_back(t, t + 1);
        }
      }
      // As DataCollatorForWholeWordMask: words in random order until the budget is covered.
      const auto budget = std::max<int64_t>(
          1, static_cast<int64_t>(std::llround(static_cast<double>(candidates.size()) * options.mask_prob)));
      for (std::size_t i = words.size(); i > 1; --i) std::swap(words[i - 1], words[rng() % i]);
      int64_t covered = 0;
      for (const auto& [first, last] : words) {
        if (covered >= budget) break;
        if (covered + (last - first) > budget) continue;
        for (int64_t t = first; t < last; ++t) chosen[static_cast<std::size_t>(t)] = 1;
        covered += last - first;
      }
      if (covered == 0) {  // every word longer than the budget: take the first token's word anyway
        for (int64_t t = words[0].first; t < words[0].second; ++t) chosen[static_cast<std::size_t>(t)] = 1;
      }
    } else {
      bool any = false;
      for (auto t : candidates) {
        if (uniform01(rng) < options.mask_prob) {
          chosen[static_cast<std::size_t>(t)] = 1;
          any = true;
        }
      }
      if (!any) chosen[static_cast<std::size_t>(candidates[rng() % candidates.size()])] = 1;
    }
    for (int64_t t = 0; t < length; ++t) {
      if (!chosen[static_cast<std::size_t>(t)]) continue;
      lp[r * length + t] = row[t];
      const double u = uniform01(rng);
      if (u < options.mask_replace_prob) {
        row[t] = vocab.mask_id;
      } else if (u < options.mask_replace_prob + options.random_replace_prob) {
        row[t] = ordinary[rng() % ordinary.size()];
      }
    }
  }
  return out;
}

torch::Tensor pack_sequences(const std::vector<std::vector<int32_t>>& documents, int64_t seq_len, int64_t cls_id,
                             int64_t sep_id, int64_t pad_id) {
  if (seq_len < 3) {
    throw ConfigError("pretrain.seq_len must be >= 3 ([CLS], a token and [SEP]), got " + std::to_string(seq_len));
  }
  int64_t total = 0;
  for (const auto& d : documents) total += static_cast<int64_t>(d.size());
  if (total == 0) throw DataError("pretraining input holds no token: give text files with some text in them");
  const int64_t chunk = seq_len - 2;
  int64_t rows = total / chunk;
  const bool partial_only = rows == 0;
  if (partial_only) rows = 1;
  auto out = torch::full({rows, seq_len}, pad_id, torch::kInt64);
  int64_t* p = out.data_ptr<int64_t>();
  int64_t r = 0, k = 0;  // row, tokens placed in it
  auto open_row = [&] { p[r * seq_len] = cls_id; };
  auto close_row = [&] { p[r * seq_len + k + 1] = sep_id; };
  open_row();
  for (const auto& d : documents) {
    for (int32_t id : d) {
      if (r >= rows) break;
      p[r * seq_len + 1 + k] = id;
      if (++k == chunk) {
        close_row();
        ++r;
        k = 0;
        if (r < rows) open_row();
      }
    }
  }
  if (partial_only) close_row();
  return out;
}

MlmModel::MlmModel(std::shared_ptr<nn::BertModel> bert) : bert_(std::move(bert)) {
  register_module("bert", bert_);
  head_ = std::make_shared<nn::BertMlmHead>(bert_->options().config, bert_->word_embeddings_weight());
  auto cls = register_module("cls", std::make_shared<torch::nn::Module>());
  cls->register_module("predictions", head_);
}

torch::Tensor MlmModel::loss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& labels) {
  const auto mask = attention_mask.defined() ? attention_mask : torch::ones_like(input_ids);
  const auto hidden = bert_->encode(input_ids, mask, torch::Tensor()).last_hidden_state;
  const auto where = labels.ne(kMlmIgnore);
  const auto picked = hidden.index({where});  // [masked, hidden]
  const auto logits = head_->forward(picked);
  return torch::nn::functional::cross_entropy(logits, labels.index({where}));
}

void validate(const PretrainOptions& o) {
  auto fail = [](const std::string& field, const std::string& rule, const std::string& got) {
    throw ConfigError("pretrain." + field + " must be " + rule + ", got " + got);
  };
  if (o.epochs < 1) fail("epochs", ">= 1", std::to_string(o.epochs));
  if (o.steps < 0) fail("steps", ">= 0 (0 = epochs)", std::to_string(o.steps));
  if (o.batch_size < 1) fail("batch_size", ">= 1", std::to_string(o.batch_size));
  if (!(o.grad_clip >= 0) || !std::isfinite(o.grad_clip)) fail("grad_clip", ">= 0", std::to_string(o.grad_clip));
  if (o.checkpoint_every < 0) fail("checkpoint_every", ">= 0", std::to_string(o.checkpoint_every));
  if (o.stop_after_steps < 0) fail("stop_after_steps", ">= 0", std::to_string(o.stop_after_steps));
  if (o.device != "cpu" && o.device.rfind("cuda", 0) != 0) fail("device", "cpu or cuda[:N]", "'" + o.device + "'");
  if (o.resume && o.run_dir.empty()) throw ConfigError("pretrain.resume needs a run directory (--out) holding a checkpoint");
  validate(o.optimizer);
  validate(o.schedule);
  validate_masking(o.masking);
}

PretrainResult pretrain_mlm(MlmModel& model, const torch::Tensor& sequences, const MlmVocab& vocab,
                            const PretrainOptions& options, const PretrainCallbacks& callbacks) {
  validate(options);
  if (sequences.dim() != 2 || sequences.size(0) == 0) {
    throw DataError("pretrain: no sequences to train on (the input is empty)");
  }
  torch::Device device(options.device);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw ConfigError("pretrain.device is '" + options.device + "' but this LibTorch has no CUDA (or no GPU is visible)");
  }
  DataParallel* dp = callbacks.parallel && callbacks.parallel->world_size() > 1 ? callbacks.parallel : nullptr;
  if (dp && device.is_cuda()) {
    throw ConfigError("data-parallel pretraining runs on the CPU (Gloo) in this build, but pretrain.device is '" +
                      options.device + "'; use --device cpu or --nproc 1");
  }
  if (dp && options.batch_size < dp->world_size()) {
    throw ConfigError("pretrain.batch_size " + std::to_string(options.batch_size) + " is the global batch, split over " +
                      std::to_string(dp->world_size()) + " processes; raise --batch-size to at least " +
                      std::to_string(dp->world_size()) + " or lower --nproc");
  }
  const bool rank0 = !dp || dp->rank() == 0;
  model.to(device);
  if (!options.run_dir.empty() && rank0) fs::create_directories(options.run_dir);

  const int64_t n = sequences.size(0);
  const int64_t batches = (n + options.batch_size - 1) / options.batch_size;
  const int64_t total_steps = options.steps > 0 ? options.steps : batches * options.epochs;
  auto params = model.parameters();
  std::vector<bool> no_decay;
  for (const auto& item : model.named_parameters()) {
    const auto& k = item.key();
    no_decay.push_back((k.size() >= 4 && k.compare(k.size() - 4, 4, "bias") == 0) ||
                       k.find("LayerNorm.") != std::string::npos);
  }
  auto optimizer = make_optimizer(params, options.optimizer, no_decay);
  auto schedule = make_schedule(options.schedule, options.optimizer.lr, total_steps);

  PretrainResult result;
  int64_t step = 0;
  if (options.resume) {
    CheckpointState st = load_checkpoint(options.run_dir, model, *optimizer);
    schedule->load_state(st.schedule);
    if (!st.extra.is_object() || !st.extra.contains("step")) {
      throw ArtifactError(options.run_dir + "/checkpoint.pt: not a pretraining checkpoint (no step); resume it with the "
                          "verb that wrote it, or start fresh without --resume");
    }
    step = st.extra["step"].get<int64_t>();
    result.resumed = true;
  } else {
    torch::manual_seed(options.seed + 1);  // dropout
  }
  if (dp) {  // rank 0's weights everywhere; then gradients summed from backward's hooks
    std::vector<torch::Tensor> tensors = params;
    for (const auto& b : model.buffers()) tensors.push_back(b);
    dp->broadcast(tensors);
    dp->attach(params, std::vector<bool>(params.size(), false));
  }
  struct Detach {
    DataParallel* dp;
    ~Detach() {
      if (dp) dp->detach();
    }
  } detach_hooks{dp};
  const LogResume log_resume{"step", step};  // the steps after the checkpoint are redone
  MetricsLog log(rank0 ? options.run_dir : std::string(), options.resume ? &log_resume : nullptr);
  auto save = [&](int64_t done) {
    if (options.run_dir.empty() || !rank0) return;
    CheckpointState st;
    st.epoch = static_cast<int>((done + batches - 1) / batches);
    st.schedule = schedule->state();
    st.extra = {{"step", done}, {"steps", total_steps}};
    save_checkpoint(options.run_dir, model, *optimizer, st, false);
  };

  model.train();
  std::vector<int64_t> order;
  int order_epoch = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double tokens = 0;
  int nonfinite_run = 0;
  int64_t steps_run = 0;
  std::vector<double> recent;
  auto index = torch::empty({options.batch_size}, torch::kInt64);
  while (step < total_steps) {
    if (options.stop_after_steps > 0 && steps_run >= options.stop_after_steps) break;
    const int epoch = static_cast<int>(step / batches) + 1;
    const int64_t b = step % batches;
    if (epoch != order_epoch) {
      order = sequence_order(n, options.seed, epoch);
      order_epoch = epoch;
    }
    const int64_t start = b * options.batch_size;
    const int64_t count = std::min(options.batch_size, n - start);
    auto idx = index.narrow(0, 0, count);
    std::copy(order.begin() + start, order.begin() + start + count, idx.data_ptr<int64_t>());
    const auto ids = sequences.index_select(0, idx);
    const auto masked = mask_tokens(ids, vocab, options.masking, options.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step));
    // All ones, but for a padded tail (a corpus shorter than one sequence).
    auto attention = ids.ne(vocab.pad_id).to(torch::kInt64);
    auto input_ids = masked.input_ids.to(device), labels = masked.labels.to(device);
    attention = attention.to(device);

    const double lr = schedule->lr();
    set_lr(*optimizer, lr);
    clear_gradients(params);
    double loss_value = 0;
    double grad_norm = kNoLoss;
    bool ok = true;
    if (dp) {
      // This rank's rows of the masked batch; its loss weighs by its masked tokens.
      const auto part = shard_of_batch(count, dp->rank(), dp->world_size());
      const int64_t rows = part.end - part.begin;
      const auto part_labels = labels.narrow(0, part.begin, rows);
      const double weight = part_labels.ne(kMlmIgnore).sum().item<double>();
      if (weight > 0) {
        auto loss = model.loss(input_ids.narrow(0, part.begin, rows), attention.narrow(0, part.begin, rows), part_labels);
        loss_value = loss.item<double>();
        dp->begin_step(weight, loss_value, rows);  // the totals' reduction overlaps backward
        if (std::isfinite(loss_value)) (loss * weight).backward();
      }
      loss_value = dp->reduce_gradients(weight, loss_value, rows).loss();
      ok = std::isfinite(loss_value);
    } else {
      auto loss = model.loss(input_ids, attention, labels);
      loss_value = loss.item<double>();
      ok = std::isfinite(loss_value);
      if (ok) loss.backward();
    }
    if (ok) {
      grad_norm = clip_grad_norm(params, options.grad_clip > 0 ? options.grad_clip : std::numeric_limits<double>::infinity());
      ok = std::isfinite(grad_norm);
    }
    ++step;
    ++steps_run;
    if (!ok) {
      clear_gradients(params);
      schedule->step();
      if (++nonfinite_run >= 5) {
        throw Error("pretraining diverged: 5 consecutive steps had a non-finite loss or gradient (step " +
                    std::to_string(step) + "); lower the learning rate (--lr)");
      }
      if (callbacks.on_warning) callbacks.on_warning("step " + std::to_string(step) + ": non-finite loss; step skipped");
      continue;
    }
    nonfinite_run = 0;
    optimizer->step();
    schedule->step();
    tokens += attention.sum().item<double>();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    PretrainStep info{step, total_steps, epoch, loss_value, lr, grad_norm, seconds > 0 ? tokens / seconds : 0.0};
    if (steps_run == 1) result.first_loss = loss_value;
    result.last_loss = loss_value;
    recent.push_back(loss_value);
    log.write({{"type", "step"},
               {"step", step},
               {"epoch", epoch},
               {"loss", loss_value},
               {"lr", lr},
               {"grad_norm", grad_norm},
               {"tokens_per_second", info.tokens_per_second}});
    if (callbacks.on_step) callbacks.on_step(info);
    const bool last = step == total_steps || (options.stop_after_steps > 0 && steps_run >= options.stop_after_steps);
    if (last || (options.checkpoint_every > 0 && step % options.checkpoint_every == 0)) {
      log.flush();
      save(step);
    }
  }
  log.flush();
  const std::size_t k = std::min<std::size_t>(recent.size(), 20);
  double sum = 0;
  for (std::size_t i = recent.size() - k; i < recent.size(); ++i) sum += recent[i];
  result.mean_last_loss = k ? sum / static_cast<double>(k) : kNoLoss;
  result.steps = step;
  result.finished = step >= total_steps;
  model.eval();
  model.to(torch::kCPU);
  return result;
}

}  // namespace kiln::train
