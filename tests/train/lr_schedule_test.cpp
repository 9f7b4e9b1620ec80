#include "kiln/train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/core/error.h"

namespace kiln::train {
namespace {

nlohmann::json read_golden(const std::string& name) {
  std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/train/" + name);
  EXPECT_TRUE(in) << "missing golden file " << name << "; run tests/golden/make_train_golden.py";
  return nlohmann::json::parse(in);
}

ScheduleOptions options_of(const nlohmann::json& c) {
  ScheduleOptions o;
  o.kind = c.at("kind").get<std::string>();
  o.warmup_steps = c.at("warmup_steps").get<int64_t>();
  if (c.contains("step_size")) o.step_size = c.at("step_size").get<int64_t>();
  if (c.contains("gamma")) o.gamma = c.at("gamma").get<double>();
  return o;
}

template <typename Fn>
void expect_config_error(Fn&& fn, const std::string& message) {
  try {
    fn();
    ADD_FAILURE() << "expected ConfigError: " << message;
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(LrSchedule, MatchesTorchLambdaLRGolden) {
  const auto golden = read_golden("lr_schedule.json");
  int checked = 0;
  for (const auto& c : golden.at("cases")) {
    auto schedule = make_schedule(options_of(c), c.at("base_lr").get<double>(), c.at("total_steps").get<int64_t>());
    const auto& steps = c.at("steps");
    const auto& lrs = c.at("lr");
    for (std::size_t k = 0; k < steps.size(); ++k) {
      const int64_t s = steps[k].get<int64_t>();
      while (schedule->step_count() < s) schedule->step();
      const double want = lrs[k].get<double>();
      EXPECT_NEAR(schedule->lr(), want, 1e-12) << c.dump() << " at step " << s;
      if (c.contains("steplr")) {
        EXPECT_NEAR(schedule->lr(), c.at("steplr")[k].get<double>(), 1e-12) << "StepLR " << s;
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(LrSchedule, WarmupRatioTruncatesLikePythonInt) {
  const auto golden = read_golden("lr_schedule.json");
  for (const auto& c : golden.at("warmup_ratio")) {
    ScheduleOptions o;
    o.warmup_ratio = c.at("warmup_ratio").get<double>();
    EXPECT_EQ(resolve_warmup_steps(o, c.at("total_steps").get<int64_t>()), c.at("warmup_steps").get<int64_t>())
        << c.dump();
  }
}

TEST(LrSchedule, BaseClassOwnsTheStepCounter) {
  WarmupCosineSchedule s(2.0, 4, 10);
  EXPECT_EQ(s.step_count(), 0);
  EXPECT_EQ(s.lr(), 0.0);
  s.step();
  EXPECT_EQ(s.step_count(), 1);
  EXPECT_DOUBLE_EQ(s.lr(), 2.0 * 0.25);
  for (int i = 0; i < 3; ++i) s.step();
  EXPECT_DOUBLE_EQ(s.lr(), 2.0);  // end of warmup: cosine at progress 0
  EXPECT_DOUBLE_EQ(s.factor(7), 0.5);
  EXPECT_DOUBLE_EQ(s.base_lr(), 2.0);
  EXPECT_EQ(s.kind(), "warmup_cosine");
}

TEST(LrSchedule, StateRoundTripResumesAtTheSameStep) {
  ScheduleOptions o;
  o.kind = "linear";
  o.warmup_steps = 3;
  auto a = make_schedule(o, 0.1, 20);
  for (int i = 0; i < 7; ++i) a->step();
  const nlohmann::json state = a->state();
  EXPECT_EQ(state.at("kind"), "linear");
  EXPECT_EQ(state.at("step"), 7);

  auto b = make_schedule(o, 0.1, 20);
  b->load_state(nlohmann::json::parse(state.dump()));
  EXPECT_EQ(b->step_count(), 7);
  EXPECT_EQ(b->lr(), a->lr());
  a->step();
  b->step();
  EXPECT_EQ(b->lr(), a->lr());
}

TEST(LrSchedule, LoadStateRejectsAnotherKind) {
  auto s = make_schedule(ScheduleOptions{}, 0.1, 20);
  expect_config_error([&] { s->load_state({{"kind", "step"}, {"step", 3}}); },
                      "schedule.kind is 'warmup_cosine' but the checkpoint was trained with 'step'; resume with the "
                      "same schedule or start a new run");
}

TEST(LrSchedule, LoadStateRejectsMalformedState) {
  auto s = make_schedule(ScheduleOptions{}, 0.1, 20);
  EXPECT_THROW(s->load_state({{"kind", "warmup_cosine"}}), ArtifactError);
  EXPECT_THROW(s->load_state({{"step", -1}}), ArtifactError);
  EXPECT_THROW(s->load_state({{"step", "3"}}), ArtifactError);
  EXPECT_THROW(s->load_state(nlohmann::json::array()), ArtifactError);
  EXPECT_EQ(s->step_count(), 0);
}

TEST(LrSchedule, FactoryBuildsEveryKind) {
  for (const char* kind : {"constant", "warmup_cosine", "linear", "step"}) {
    ScheduleOptions o;
    o.kind = kind;
    EXPECT_EQ(make_schedule(o, 0.1, 10)->kind(), kind);
  }
}

TEST(LrSchedule, ConstantWithoutWarmupIsConstant) {
  ScheduleOptions o;
  o.kind = "constant";
  auto s = make_schedule(o, 0.5, 10);
  for (int i = 0; i < 15; ++i, s->step()) EXPECT_EQ(s->lr(), 0.5);
}

TEST(LrScheduleOptions, RejectsUnknownKind) {
  ScheduleOptions o;
  o.kind = "cosine";
  expect_config_error([&] { validate(o); },
                      "schedule.kind must be one of constant, warmup_cosine, linear, step, got 'cosine'");
}

TEST(LrScheduleOptions, RejectsNegativeWarmupSteps) {
  ScheduleOptions o;
  o.warmup_steps = -2;
  expect_config_error([&] { validate(o); }, "schedule.warmup_steps must be >= 0 (or -1 to use warmup_ratio), got -2");
}

TEST(LrScheduleOptions, RejectsWarmupRatioOutsideUnitInterval) {
  ScheduleOptions o;
  o.warmup_ratio = 1.5;
  expect_config_error([&] { validate(o); }, "schedule.warmup_ratio must be in [0, 1], got 1.5");
  o.warmup_ratio = std::nan("");
  expect_config_error([&] { validate(o); }, "schedule.warmup_ratio must be in [0, 1], got nan");
}

TEST(LrScheduleOptions, RejectsBothWarmupStepsAndRatio) {
  ScheduleOptions o;
  o.warmup_steps = 10;
  o.warmup_ratio = 0.1;
  expect_config_error([&] { validate(o); },
                      "schedule.warmup_steps (10) and schedule.warmup_ratio (0.1) are both set; set only one "
                      "(warmup_steps -1 uses the ratio)");
}

TEST(LrScheduleOptions, RejectsStepSizeBelowOne) {
  ScheduleOptions o;
  o.step_size = 0;
  expect_config_error([&] { validate(o); }, "schedule.step_size must be >= 1, got 0");
}

TEST(LrScheduleOptions, RejectsGammaOutsideRange) {
  ScheduleOptions o;
  o.gamma = 0.0;
  expect_config_error([&] { validate(o); }, "schedule.gamma must be in (0, 1], got 0");
  o.gamma = 1.5;
  expect_config_error([&] { validate(o); }, "schedule.gamma must be in (0, 1], got 1.5");
}

TEST(LrScheduleOptions, RejectsNonPositiveBaseLr) {
  expect_config_error([] { (void)make_schedule(ScheduleOptions{}, -0.1, 10); }, "optimizer.lr must be > 0, got -0.1");
}

TEST(LrScheduleOptions, RejectsZeroTotalSteps) {
  expect_config_error([] { (void)make_schedule(ScheduleOptions{}, 0.1, 0); },
                      "schedule: total training steps must be >= 1, got 0");
}

TEST(LrScheduleOptions, RejectsWarmupLongerThanTraining) {
  ScheduleOptions o;
  o.warmup_steps = 50;
  expect_config_error([&] { (void)make_schedule(o, 0.1, 40); },
                      "schedule.warmup_steps (50) exceeds the 40 total training steps; lower it or train for more "
                      "epochs");
}

}  // namespace
}  // namespace kiln::train
