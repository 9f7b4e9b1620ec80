// A tiny BERT learns a toy token task through the trainer, with the trainer's default sparse-gradient
// setting on (BERT's dense nn::Embedding tables keep dense gradients and torch's AdamW formula).
#include <gtest/gtest.h>

#include <random>

#include "kiln/nn/bert.h"
#include "kiln/nn/model.h"
#include "kiln/train/trainer.h"

using namespace kiln;

namespace {

// Class c's sequences hold the marker token 10 + c somewhere among noise tokens 20..49, padded
// with 0 to their length (5..12 tokens, [CLS] = 2 first).
train::LabeledBatch toy_task(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t length = 12;
  auto ids = torch::zeros({n, length}, torch::kInt64);
  auto mask = torch::zeros({n, length}, torch::kInt64);
  train::LabeledBatch out;
  for (int i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(rng() % 3);
    const int64_t len = 5 + static_cast<int64_t>(rng() % 8);
    const int64_t marker_at = 1 + static_cast<int64_t>(rng() % (len - 1));
    for (int64_t t = 0; t < len; ++t) {
      ids[i][t] = t == 0 ? 2 : t == marker_at ? 10 + c : 20 + static_cast<int64_t>(rng() % 30);
      mask[i][t] = 1;
    }
    out.y.push_back(c);
  }
  out.x = nn::Batch(n);
  out.x.set(nn::kInputIds, ids);
  out.x.set(nn::kAttentionMask, mask);
  return out;
}

nn::InputSpec token_spec() {
  nn::InputSpec spec;
  spec.tensors.push_back({nn::kInputIds, "int64", {"batch", "sequence"}, 50});
  spec.tensors.push_back({nn::kAttentionMask, "int64", {"batch", "sequence"}, 0});
  return spec;
}

TEST(BertTraining, TinyBertLearnsToyTaskThroughTrainer) {
  torch::manual_seed(4);
  nn::ModelSpec spec;
  spec.family = "bert";
  spec.params = {{"preset", "tiny"}, {"hidden_size", 32}, {"intermediate_size", 64}, {"max_position_embeddings", 16}};
  auto model = nn::make_model(spec, token_spec(), 3);
  const auto train_set = toy_task(240, 1);
  const auto val_set = toy_task(60, 2);

  train::TrainerOptions options;
  options.epochs = 30;
  options.batch_size = 16;
  options.optimizer.lr = 3e-3;
  options.early_stopping_patience = 0;
  options.calibrate = "none";
  ASSERT_TRUE(options.sparse_gradients);
  const auto result = train::train_model(*model, train_set, &val_set, 3, options);
  ASSERT_FALSE(result.history.empty());
  EXPECT_LT(result.history.back().train_loss, 0.5 * result.history.front().train_loss);
  EXPECT_GT(result.best_val_macro_f1, 0.9);
  const auto proba = nn::predict_proba(*model, val_set.x);
  const auto metrics = train::compute_metrics_from_proba(val_set.y, proba, 3);
  EXPECT_GT(metrics.accuracy, 0.9);
  // The padding row (pad_token_id 0) has no gradient: it stays zero through AdamW.
  const auto word = model->named_parameters()["embeddings.word_embeddings.weight"];
  EXPECT_EQ(word[0].abs().max().item<float>(), 0.0f);
  EXPECT_FALSE(word.grad().defined() && word.grad().is_sparse());
}

}  // namespace
