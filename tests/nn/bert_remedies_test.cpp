// The bert family's gradient-vanishing switches (layer_norm, residual_scale 0, init) each change
// the model as documented, and Model::forward on token windows averages the windows' logits.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "nn_test_util.h"

namespace kiln::nn {
namespace {

BertOptions small_options() {
  BertOptions o;
  o.config.vocab_size = 30;
  o.config.hidden_size = 16;
  o.config.num_hidden_layers = 1;
  o.config.num_attention_heads = 2;
  o.config.intermediate_size = 32;
  o.config.max_position_embeddings = 16;
  o.num_classes = 3;
  return o;
}

torch::Tensor param(BertModel& m, const std::string& name) {
  for (const auto& p : m.named_parameters()) {
    if (p.key() == name) return p.value();
  }
  ADD_FAILURE() << "no parameter " << name;
  return {};
}

// The embeddings' sum before LayerNorm: word[ids] + token_type[0] + position[0..L).
torch::Tensor raw_embeddings(BertModel& m, const torch::Tensor& ids) {
  return param(m, "embeddings.word_embeddings.weight").index_select(0, ids.reshape({-1})).view({ids.size(0), ids.size(1), -1}) +
         param(m, "embeddings.token_type_embeddings.weight")[0] +
         param(m, "embeddings.position_embeddings.weight").narrow(0, 0, ids.size(1));
}

TEST(BertRemedies, LayerNormOffRemovesEveryLayerNorm) {
  auto o = small_options();
  o.config.num_hidden_layers = 0;
  o.layer_norm = false;
  torch::manual_seed(0);
  BertModel off(o);
  off.eval();
  for (const auto& p : off.named_parameters()) EXPECT_EQ(p.key().find("LayerNorm"), std::string::npos) << p.key();
  const auto ids = torch::tensor({{2, 5, 6, 3}}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const auto h = off.encode(ids, torch::ones_like(ids), torch::Tensor()).last_hidden_state;
  EXPECT_TRUE(torch::allclose(h, raw_embeddings(off, ids), 1e-6, 1e-6));
  // On (the default): the same sum, normalised per token (mean 0, variance 1 with weight 1, bias 0).
  o.layer_norm = true;
  BertModel on(o);
  on.eval();
  const auto n = on.encode(ids, torch::ones_like(ids), torch::Tensor()).last_hidden_state;
  EXPECT_LT(n.mean(-1).abs().max().item<double>(), 1e-5);
  EXPECT_LT((n.var(-1, false) - 1).abs().max().item<double>(), 1e-3);
}

TEST(BertRemedies, ResidualScaleZeroDropsTheSkipConnection) {
  // layer_norm off and both sublayers' output projections zero: a layer's output is s * x.
  for (const double s : {0.0, 1.0}) {
    auto o = small_options();
    o.layer_norm = false;
    o.residual_scale = s;
    torch::manual_seed(1);
    BertModel m(o);
    m.eval();
    torch::NoGradGuard no_grad;
    for (const char* name : {"encoder.layer.0.attention.output.dense.weight", "encoder.layer.0.attention.output.dense.bias",
                             "encoder.layer.0.output.dense.weight", "encoder.layer.0.output.dense.bias"}) {
      param(m, name).zero_();
    }
    const auto ids = torch::tensor({{2, 7, 8, 3}}, torch::kInt64);
    const auto h = m.encode(ids, torch::ones_like(ids), torch::Tensor()).last_hidden_state;
    EXPECT_TRUE(torch::allclose(h, s * raw_embeddings(m, ids), 1e-6, 1e-6)) << "residual_scale " << s;
  }
}

TEST(BertRemedies, TorchInitKeepsLibTorchDefaults) {
  auto o = small_options();
  o.config.hidden_size = 64;
  o.config.num_attention_heads = 4;
  torch::manual_seed(2);
  BertModel bert(o);
  o.init = BertInit::kTorch;
  BertModel libtorch(o);
  const double bound = 1.0 / std::sqrt(64.0);  // kaiming_uniform(a = sqrt 5) on fan_in 64
  auto std_of = [](const torch::Tensor& t) { return t.std().item<double>(); };
  EXPECT_NEAR(std_of(param(bert, "embeddings.word_embeddings.weight")), 0.02, 0.005);
  EXPECT_NEAR(std_of(param(libtorch, "embeddings.word_embeddings.weight")), 1.0, 0.15);
  const auto q = param(libtorch, "encoder.layer.0.attention.self.query.weight");
  EXPECT_LE(q.abs().max().item<double>(), bound + 1e-6);
  EXPECT_NEAR(std_of(q), bound / std::sqrt(3.0), 0.2 * bound);
  EXPECT_GT(param(libtorch, "encoder.layer.0.attention.self.query.bias").abs().sum().item<double>(), 0);
  EXPECT_EQ(param(bert, "encoder.layer.0.attention.self.query.bias").abs().sum().item<double>(), 0);
  EXPECT_EQ(param(libtorch, "embeddings.word_embeddings.weight")[0].abs().sum().item<double>(), 0);  // padding row
}

TEST(BertRemedies, ParamsReachTheOptions) {
  const auto o = parse_bert_params({{"preset", "tiny"}, {"layer_norm", false}, {"residual_scale", 0}, {"init", "torch"}}, 30, 2);
  EXPECT_FALSE(o.layer_norm);
  EXPECT_EQ(o.residual_scale, 0.0);
  EXPECT_EQ(o.init, BertInit::kTorch);
  const auto d = parse_bert_params({{"preset", "tiny"}}, 30, 2);
  EXPECT_TRUE(d.layer_norm);
  EXPECT_EQ(d.init, BertInit::kBert);
}

Batch window_batch(const std::vector<std::vector<std::vector<int64_t>>>& texts, int64_t windows, int64_t length) {
  const auto n = static_cast<int64_t>(texts.size());
  auto ids = torch::zeros({n, windows, length}, torch::kInt64);
  auto mask = torch::zeros({n, windows, length}, torch::kInt64);
  for (int64_t t = 0; t < n; ++t) {
    for (size_t w = 0; w < texts[t].size(); ++w) {
      for (size_t k = 0; k < texts[t][w].size(); ++k) {
        ids[t][static_cast<int64_t>(w)][static_cast<int64_t>(k)] = texts[t][w][k];
        mask[t][static_cast<int64_t>(w)][static_cast<int64_t>(k)] = 1;
      }
    }
  }
  Batch b(n);
  b.set(kInputIds, ids);
  b.set(kAttentionMask, mask);
  b.set(kTokenTypeIds, torch::zeros_like(ids));
  return b;
}

TEST(BertWindows, ForwardAveragesEachTextsWindowLogits) {
  torch::manual_seed(3);
  BertModel m(small_options());
  m.eval();
  torch::InferenceMode guard;
  const std::vector<int64_t> w0 = {2, 5, 6, 7, 3}, w1 = {2, 7, 8, 3}, w2 = {2, 9, 3}, v0 = {2, 10, 11, 3};
  const auto logits = m.forward(window_batch({{w0, w1, w2}, {v0}}, 3, 5));
  ASSERT_EQ(logits.sizes().vec(), (std::vector<int64_t>{2, 3}));
  // By hand: each window alone (an ordinary [1, sequence] batch), then the mean over the text's windows.
  auto one = [&](const std::vector<int64_t>& w) {
    const auto ids = torch::tensor(w, torch::kInt64).unsqueeze(0);
    Batch b(1);
    b.set(kInputIds, ids);
    b.set(kAttentionMask, torch::ones_like(ids));
    b.set(kTokenTypeIds, torch::zeros_like(ids));
    return m.forward(b)[0];
  };
  const auto want0 = (one(w0) + one(w1) + one(w2)) / 3;
  EXPECT_TRUE(torch::allclose(logits[0], want0, 1e-5, 1e-5)) << logits[0] << want0;
  EXPECT_TRUE(torch::allclose(logits[1], one(v0), 1e-5, 1e-5));
  // embed_examples: the mean of the windows' pooled vectors.
  const auto pooled = m.embed_examples(window_batch({{w0, w1, w2}, {v0}}, 3, 5));
  ASSERT_EQ(pooled.sizes().vec(), (std::vector<int64_t>{2, 16}));
}

TEST(BertWindows, GradientsReachEveryWindowInTraining) {
  torch::manual_seed(4);
  BertModel m(small_options());
  m.train();
  const auto loss = m.forward(window_batch({{{2, 5, 3}, {2, 6, 3}}, {{2, 7, 3}}}, 2, 3)).sum();
  loss.backward();
  const auto g = param(m, "embeddings.word_embeddings.weight").grad();
  for (const int64_t id : {5, 6, 7}) EXPECT_GT(g[id].abs().sum().item<double>(), 0) << "token " << id;
  EXPECT_EQ(g[8].abs().sum().item<double>(), 0);
}

TEST(BatchWindows, ConcatPadsWindowsAndSequences) {
  const auto a = window_batch({{{2, 5, 3}}}, 1, 3);
  const auto b = window_batch({{{2, 5, 6, 7, 3}, {2, 8, 3}}}, 2, 5);
  const auto c = Batch::concat({a, b});
  ASSERT_EQ(c.at(kInputIds).sizes().vec(), (std::vector<int64_t>{2, 2, 5}));
  EXPECT_EQ(c.at(kAttentionMask)[0][1].sum().item<int64_t>(), 0);
  EXPECT_EQ(c.at(kAttentionMask)[0][0].sum().item<int64_t>(), 3);
  const auto flat = flatten_windows(c);
  EXPECT_EQ(flat.windows.size(), 3);
  const auto owner = flat.owner.contiguous();
  EXPECT_EQ(std::vector<int64_t>(owner.data_ptr<int64_t>(), owner.data_ptr<int64_t>() + owner.numel()),
            (std::vector<int64_t>{0, 1, 1}));
}

TEST(BatchWindows, MismatchedMaskNamesTheTensor) {
  auto b = window_batch({{{2, 5, 3}}}, 1, 3);
  b.set(kAttentionMask, torch::ones({1, 3}, torch::kInt64));
  try {
    (void)flatten_windows(b);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("attention_mask must have input_ids' shape [batch, window, sequence]"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kiln::nn
