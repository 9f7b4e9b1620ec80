// Masked-language-model pretraining of a BERT encoder from scratch (kiln pretrain), as BERT and
// Hugging Face's run_mlm.py do it: token streams packed into fixed-length sequences
// ([CLS] chunk [SEP]), 15% of the non-special tokens chosen for prediction (80% of those replaced
// by [MASK], 10% by a random token, 10% kept), optionally whole words at a time, cross-entropy on
// the chosen positions only, AdamW with weight decay off biases and LayerNorm weights, linear
// warmup + cosine decay, gradient clipping, metrics.jsonl and checkpoints with exact resume.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kiln/nn/bert.h"
#include "kiln/train/lr_schedule.h"
#include "kiln/train/optimizer.h"

namespace kiln::train {

/// Label value of positions that are not predicted (Hugging Face's ignore index).
inline constexpr int64_t kMlmIgnore = -100;

struct MlmMaskingOptions {
  /// Share of the non-special tokens chosen for prediction, in (0, 1). Default 0.15.
  double mask_prob = 0.15;
  /// Of the chosen tokens: share replaced by [MASK]; of the rest, half by a random token, half
  /// kept (BERT's 80/10/10). In [0, 1]. Default 0.8.
  double mask_replace_prob = 0.8;
  /// Share of the chosen tokens replaced by a random (non-special) token, in [0, 1 - mask_replace_prob].
  /// Default 0.1.
  double random_replace_prob = 0.1;
  /// Choose whole words: a word is a token and its "##" continuations, chosen or left together
  /// (Hugging Face's DataCollatorForWholeWordMask). Default false.
  bool whole_word = false;
};

/// What masking needs to know about the vocabulary.
struct MlmVocab {
  int64_t size = 0;
  int64_t mask_id = -1;
  int64_t pad_id = -1;  ///< positions holding it are not attended
  /// Ids never chosen nor drawn as random replacements ([CLS], [SEP], [PAD], [MASK], [UNK]).
  std::vector<int64_t> special_ids;
  /// Per id: the token is a "##" continuation (for whole-word masking). Empty: none is.
  std::vector<bool> continuation;
};

struct MlmBatch {
  torch::Tensor input_ids;  ///< int64 [batch, sequence], with the replacements applied
  torch::Tensor labels;     ///< int64 [batch, sequence]: the original id where predicted, kMlmIgnore elsewhere
};

/// Masks `ids` (int64 [batch, sequence], CPU). Deterministic in `seed`. At least one position of
/// each row that has a non-special token is chosen. Throws ConfigError for bad options.
[[nodiscard]] MlmBatch mask_tokens(const torch::Tensor& ids, const MlmVocab& vocab, const MlmMaskingOptions& options,
                                   uint64_t seed);

/// Concatenates the documents' token ids (special tokens excluded) and cuts the stream into
/// sequences of `seq_len` tokens: [CLS], seq_len - 2 tokens, [SEP] (the last partial chunk is kept
/// when it is the only one, padded with `pad_id`). int64 [sequences, seq_len]. Throws DataError when
/// the documents hold no token, ConfigError when seq_len < 3.
[[nodiscard]] torch::Tensor pack_sequences(const std::vector<std::vector<int32_t>>& documents, int64_t seq_len,
                                           int64_t cls_id, int64_t sep_id, int64_t pad_id);

/// BERT and its masked-LM head as one module (checkpoints hold both).
class MlmModel : public torch::nn::Module {
 public:
  explicit MlmModel(std::shared_ptr<nn::BertModel> bert);
  /// Mean cross-entropy of the head's predictions at the positions `labels` marks (others are
  /// kMlmIgnore), as BertForMaskedLM's loss. The vocabulary logits are computed only there.
  /// `attention_mask` may be undefined (all ones).
  [[nodiscard]] torch::Tensor loss(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   const torch::Tensor& labels);
  [[nodiscard]] nn::BertModel& bert() { return *bert_; }
  [[nodiscard]] nn::BertMlmHead& head() { return *head_; }

 private:
  std::shared_ptr<nn::BertModel> bert_;
  std::shared_ptr<nn::BertMlmHead> head_;
};

struct PretrainOptions {
  /// Passes over the packed sequences (used when `steps` is 0). Default 1.
  int epochs = 1;
  /// Optimizer steps in all; 0 = `epochs` passes. Default 0.
  int64_t steps = 0;
  /// Sequences per optimizer step. Default 32.
  int64_t batch_size = 32;
  /// AdamW; weight decay skips biases and LayerNorm weights. Default lr 5e-4 (BERT-small scale),
  /// weight decay 0.01.
  OptimizerOptions optimizer = [] {
    OptimizerOptions o;
    o.lr = 5e-4;
    o.weight_decay = 0.01;
    return o;
  }();
  /// Default warmup_cosine with 6% warmup (RoBERTa's).
  ScheduleOptions schedule = [] {
    ScheduleOptions s;
    s.kind = "warmup_cosine";
    s.warmup_ratio = 0.06;
    return s;
  }();
  /// Global gradient-norm clip; 0 disables. Default 1.0.
  double grad_clip = 1.0;
  MlmMaskingOptions masking;
  /// Seeds init, order, masking and dropout. Default 42.
  uint64_t seed = 42;
  /// Run directory: metrics.jsonl, checkpoint.pt/.json. Empty = none. Default empty.
  std::string run_dir;
  /// Continue from run_dir's checkpoint. Default false.
  bool resume = false;
  /// Write a checkpoint every this many steps (and at the end); 0 = only at the end. Default 200.
  int64_t checkpoint_every = 200;
  /// Stop after this many steps of this invocation, leaving a checkpoint (tests of resume); 0 = no
  /// limit. Default 0.
  int64_t stop_after_steps = 0;
  /// "cpu" or "cuda[:N]". Default "cpu".
  std::string device = "cpu";
};

/// Throws ConfigError naming the field and the value.
void validate(const PretrainOptions& options);

struct PretrainStep {
  int64_t step = 0;   ///< 1-based, global
  int64_t steps = 0;  ///< in all
  int epoch = 0;
  double loss = 0;    ///< this step's masked-LM loss
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_second = 0;  ///< tokens (attended) processed per second in this invocation
};

class DataParallel;  // kiln/train/data_parallel.h

struct PretrainCallbacks {
  std::function<void(const PretrainStep&)> on_step;
  std::function<void(const std::string&)> on_warning;
  /// Data-parallel pretraining (device cpu): this process is one rank; null = one process. Each
  /// step's batch is drawn and masked as in one process, then split over the ranks; the loss is
  /// normalised by the masked tokens of the whole batch, so N ranks take one process's steps. Rank 0
  /// alone writes metrics.jsonl and checkpoints. Not owned.
  DataParallel* parallel = nullptr;
};

struct PretrainResult {
  int64_t steps = 0;           ///< global steps done
  double first_loss = 0, last_loss = 0;
  double mean_last_loss = 0;   ///< mean over the last min(steps, 20) steps of this invocation
  bool resumed = false;
  bool finished = false;       ///< all steps done (false when stop_after_steps cut it)
};

/// Pretrains `model` in place (train mode during, eval mode after) on `sequences` (int64
/// [n, seq_len] from pack_sequences). Throws ConfigError/DataError, Error when training diverges.
[[nodiscard]] PretrainResult pretrain_mlm(MlmModel& model, const torch::Tensor& sequences, const MlmVocab& vocab,
                                          const PretrainOptions& options, const PretrainCallbacks& callbacks = {});

}  // namespace kiln::train
