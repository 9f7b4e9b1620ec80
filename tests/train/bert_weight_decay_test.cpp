// Weight decay as Hugging Face's Trainer applies it to BERT: biases and LayerNorm weights are exempt.
#include <gtest/gtest.h>

#include "kiln/nn/bert.h"
#include "kiln/train/optimizer.h"

using namespace kiln;

namespace {

nn::BertOptions small() {
  nn::BertOptions o;
  o.config.vocab_size = 20;
  o.config.hidden_size = 8;
  o.config.num_hidden_layers = 1;
  o.config.num_attention_heads = 2;
  o.config.intermediate_size = 16;
  o.config.max_position_embeddings = 8;
  return o;
}

TEST(BertWeightDecay, ExemptsBiasesAndLayerNormWeights) {
  nn::BertModel model(small());
  int exempt = 0, decayed = 0;
  for (const auto& item : model.named_parameters()) {
    const auto& k = item.key();
    const bool want = k.size() >= 4 && (k.compare(k.size() - 4, 4, "bias") == 0 || k.find("LayerNorm") != std::string::npos);
    EXPECT_EQ(model.weight_decay_exempt(k), want) << k;
    (want ? exempt : decayed) += 1;
  }
  EXPECT_TRUE(model.weight_decay_exempt("embeddings.LayerNorm.weight"));
  EXPECT_TRUE(model.weight_decay_exempt("encoder.layer.0.output.LayerNorm.weight"));
  EXPECT_TRUE(model.weight_decay_exempt("classifier.bias"));
  EXPECT_FALSE(model.weight_decay_exempt("encoder.layer.0.attention.self.query.weight"));
  EXPECT_FALSE(model.weight_decay_exempt("embeddings.word_embeddings.weight"));
  EXPECT_TRUE(model.zero_gradient_by_design("encoder.layer.0.attention.self.key.bias"));
  EXPECT_FALSE(model.zero_gradient_by_design("encoder.layer.0.attention.self.query.bias"));
  EXPECT_GT(exempt, 0);
  EXPECT_GT(decayed, 0);
}

TEST(BertWeightDecay, AdamWDecaysOnlyTheFlaggedGroup) {
  // Zero gradients: AdamW's step is the decoupled decay alone, p *= 1 - lr * wd.
  auto a = torch::ones({3}).requires_grad_(), b = torch::ones({3}).requires_grad_();
  a.mutable_grad() = torch::zeros({3});
  b.mutable_grad() = torch::zeros({3});
  train::OptimizerOptions o;
  o.lr = 0.1;
  o.weight_decay = 0.5;
  auto opt = train::make_optimizer({a, b}, o, {false, true});
  ASSERT_EQ(opt->param_groups().size(), 2u);
  opt->step();
  EXPECT_TRUE(torch::allclose(a, torch::full({3}, 0.95f)));
  EXPECT_TRUE(torch::equal(b.detach(), torch::ones({3})));
  // No flags: one group, every parameter decayed, as before.
  auto c = torch::ones({3}).requires_grad_();
  c.mutable_grad() = torch::zeros({3});
  auto one = train::make_optimizer({c}, o);
  EXPECT_EQ(one->param_groups().size(), 1u);
  one->step();
  EXPECT_TRUE(torch::allclose(c, torch::full({3}, 0.95f)));
}

}  // namespace
