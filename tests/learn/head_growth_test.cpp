#include "kiln/learn/head_growth.h"

#include <gtest/gtest.h>

#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "learn_fixtures.h"

using namespace kiln;

// For each family: the grown model gives the old classes exactly the old logits (old rows and every
// other weight kept), and the new class's rows are what the family's own initialisation gives a fresh
// model built with the same seed.
TEST(HeadGrowth, OldClassesKeepTheirLogitsAndNewRowsAreTheFamilysInit) {
  const auto train = learn_test::topics(150, 1);
  for (const std::string family : {"linear", "mlp", "embedbag"}) {
    SCOPED_TRACE(family);
    auto config = learn_test::small_config(family);
    if (family == "embedbag") config.featurizer = {{"type", "hashed_ngrams"}, {"buckets", 4096}};
    config.trainer.epochs = 1;
    const auto parent = pipeline::run_pipeline(config, train, nullptr, nullptr).artifact;
    const auto grown = learn::grow_labels(parent, {"music", "poetry"}, 5);
    ASSERT_EQ(grown.manifest.labels.size(), 5u);
    EXPECT_EQ(grown.manifest.labels[3], "music");
    EXPECT_EQ(grown.manifest.labels[4], "poetry");
    EXPECT_EQ(grown.model->num_classes(), 5);

    const artifact::Predictor before(parent), after(grown);
    const auto x = before.encode(learn_test::topics(20, 2));
    const auto old_logits = before.forward(x);
    const auto new_logits = after.forward(x);
    ASSERT_EQ(new_logits.size(1), 5);
    EXPECT_TRUE(torch::allclose(new_logits.narrow(1, 0, 3), old_logits, 1e-6, 1e-6));

    torch::manual_seed(5);
    auto fresh = nn::make_model(parent.manifest.model, parent.manifest.inputs, 5);
    auto fresh_params = fresh->named_parameters();
    const auto parent_params = parent.model->named_parameters();
    bool some_grown = false;
    for (const auto& p : grown.model->named_parameters()) {
      const auto& old = parent_params[p.key()];
      if (old.sizes() == p.value().sizes()) {
        EXPECT_TRUE(torch::equal(old, p.value())) << p.key();
        continue;
      }
      some_grown = true;
      const int64_t d = old.size(0) != p.value().size(0) ? 0 : 1;
      EXPECT_TRUE(torch::equal(p.value().narrow(d, 3, 2), fresh_params[p.key()].narrow(d, 3, 2))) << p.key();
    }
    EXPECT_TRUE(some_grown);
  }
}

TEST(HeadGrowth, RefusesALabelItAlreadyHas) {
  const auto parent = pipeline::run_pipeline(learn_test::small_config(), learn_test::topics(60, 1), nullptr, nullptr).artifact;
  try {
    (void)learn::grow_labels(parent, {"cook"}, 0);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("label 'cook' is already one of the model's labels"), std::string::npos)
        << e.what();
  }
}
