#include "kiln/learn/gated_update.h"

#include <gtest/gtest.h>

#include <random>

#include "kiln/core/error.h"
#include "learn_fixtures.h"

using namespace kiln;

// scikit-learn's f1_score(average="macro") on these lists (labels from truth and predictions).
TEST(GatedUpdate, MacroF1IsScikitLearnsMacroAverage) {
  EXPECT_NEAR(learn::macro_f1({"a", "a", "b", "c"}, {"a", "b", "b", "b"}), (2.0 / 3 + 0.5 + 0) / 3, 1e-12);
  // A label only predicted counts too (its F1 is 0).
  EXPECT_NEAR(learn::macro_f1({"a", "a"}, {"a", "z"}), (2.0 / 3 + 0) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(learn::macro_f1({"a", "b"}, {"a", "b"}), 1.0);
  EXPECT_DOUBLE_EQ(learn::macro_f1({}, {}), 0.0);
}

namespace {

struct Fixture {
  artifact::Artifact served;
  data::Dataset gate, recent;
};

Fixture make_fixture(const std::vector<std::string>& recent_labels = {"astro", "cook", "sail", "music"}) {
  Fixture f;
  auto config = learn_test::small_config();
  config.trainer.epochs = 2;
  f.served = pipeline::run_pipeline(config, learn_test::topics(200, 1), nullptr, nullptr).artifact;
  f.gate = learn_test::topics(120, 2);
  f.recent = learn_test::topics(60, 3, recent_labels);
  for (std::size_t i = 0; i < f.recent.size(); ++i) f.gate.push_back(f.recent.example(i));
  return f;
}

}  // namespace

// A class the served model cannot predict arrives: the candidate grows its head, learns it with old
// items replayed, keeps the old classes and improves on recent feedback, so it is promoted.
TEST(GatedUpdate, PromotesACandidateThatLearnsANewClassWithoutForgetting) {
  auto f = make_fixture();
  learn::ReplayBufferOptions bo;
  bo.capacity = 200;
  bo.batch_size = 16;
  learn::ReplayBuffer buffer(bo);
  const auto old = learn_test::topics(200, 4);
  for (std::size_t i = 0; i < old.size(); ++i) (void)buffer.add(old.example(i));
  learn::UpdateOptions o;
  o.allow_new_labels = true;
  o.epochs = 3;
  const auto r = learn::gated_update(f.served, learn_test::topics(120, 5, {"music"}), buffer, f.gate, f.recent, o);
  EXPECT_TRUE(r.promoted) << r.reason;
  EXPECT_EQ(r.new_labels, std::vector<std::string>{"music"});
  EXPECT_EQ(r.candidate.manifest.labels.size(), 4u);
  EXPECT_EQ(r.trained_new, 120);
  EXPECT_EQ(r.trained_replayed, 120);
  EXPECT_GT(r.scores.candidate_recent, r.scores.served_recent);
  EXPECT_EQ(buffer.seen(), 320);  // the new items joined the buffer after the update drew from it
  EXPECT_TRUE(r.candidate.manifest.lineage["warm_start"].get<bool>());
}

// A poisoned stream (random labels) trains a worse candidate: the gate stops it and says why.
TEST(GatedUpdate, PoisonedFeedbackIsStoppedByTheGate) {
  auto f = make_fixture({"astro", "cook", "sail"});
  auto poisoned = learn_test::topics(300, 6);
  std::mt19937 rng(1);
  const std::vector<std::string> labels = {"astro", "cook", "sail"};
  for (auto& l : poisoned.labels) l = labels[rng() % 3];
  learn::ReplayBufferOptions bo;
  bo.replay_ratio = 0;
  learn::ReplayBuffer buffer(bo);
  learn::UpdateOptions o;
  o.epochs = 5;
  o.lr = 0.5;
  const auto r = learn::gated_update(f.served, poisoned, buffer, f.gate, f.recent, o);
  EXPECT_FALSE(r.promoted);
  EXPECT_EQ(r.reason_code, "regression") << r.reason;
  EXPECT_NE(r.reason.find("macro-F1 on the gate set (180 rows) fell from "), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("more than the 0.50 points --max-regression allows"), std::string::npos) << r.reason;
  EXPECT_LT(r.scores.candidate_gate, r.scores.served_gate);
}

TEST(GatedUpdate, WithoutRecentFeedbackNothingIsPromoted) {
  auto f = make_fixture();
  learn::ReplayBuffer buffer;
  const auto r = learn::gated_update(f.served, learn_test::topics(50, 7), buffer, f.gate, data::Dataset(), {});
  EXPECT_FALSE(r.promoted);
  EXPECT_EQ(r.reason_code, "no_recent_feedback");
}
