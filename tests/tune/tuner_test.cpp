#include "kiln/tune/tuner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/tune/command_objective.h"
#include "kiln/tune/hyperband_pruner.h"
#include "kiln/tune/train_objective.h"

namespace kiln::tune {
namespace {

// A storage in memory with the interface's contract (unique gap-free numbers, running-only
// updates, stale detection), so the loop is tested without a database.
class MemoryStorage : public Storage {
 public:
  StudyInfo create_or_load_study(const std::string& name, Direction direction) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : studies_) {
      if (s.name == name) return s;
    }
    StudyInfo s;
    s.id = static_cast<int64_t>(studies_.size());
    s.name = name;
    s.direction = direction;
    studies_.push_back(s);
    return s;
  }
  std::optional<StudyInfo> find_study(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : studies_)
      if (s.name == name) return s;
    return std::nullopt;
  }
  std::vector<StudyInfo> list_studies() override { return studies_; }
  void set_study_attr(int64_t study_id, const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    studies_.at(study_id).user_attrs[key] = value;
  }
  Trial create_trial(int64_t study_id, const std::map<std::string, double>& params,
                     const std::map<std::string, Distribution>& distributions) override {
    std::lock_guard<std::mutex> lock(mu_);
    Trial t;
    t.id = static_cast<int64_t>(trials_.size());
    t.number = 0;
    for (const auto& [id, s] : study_of_) t.number += s == study_id;
    t.params = params;
    t.distributions = distributions;
    t.datetime_start = unix_now();
    t.heartbeat = t.datetime_start;
    trials_.push_back(t);
    study_of_[t.id] = study_id;
    return t;
  }
  void report(int64_t trial_id, int64_t step, double value) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& t = trials_.at(trial_id);
    if (t.state != TrialState::kRunning) throw Error("trial " + std::to_string(t.number) + " is not running");
    t.intermediate[step] = value;
  }
  bool finish_trial(int64_t trial_id, TrialState state, std::optional<double> value) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& t = trials_.at(trial_id);
    if (t.state != TrialState::kRunning) return false;
    t.state = state;
    t.value = value;
    t.datetime_complete = unix_now();
    return true;
  }
  void set_trial_attr(int64_t trial_id, const std::string& key, const std::string& value) override {
    std::lock_guard<std::mutex> lock(mu_);
    trials_.at(trial_id).user_attrs[key] = value;
  }
  void heartbeat(int64_t trial_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    trials_.at(trial_id).heartbeat = unix_now();
    ++heartbeats;
  }
  std::vector<int64_t> fail_stale_trials(int64_t study_id, double timeout_seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<int64_t> out;
    for (auto& t : trials_) {
      if (study_of_[t.id] != study_id || t.state != TrialState::kRunning) continue;
      if (unix_now() - t.heartbeat.value_or(0) > timeout_seconds) {
        t.state = TrialState::kFailed;
        t.user_attrs["fail_reason"] = "stale";
        out.push_back(t.number);
      }
    }
    return out;
  }
  std::vector<Trial> trials(int64_t study_id, const std::vector<TrialState>& states) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Trial> out;
    for (const auto& t : trials_) {
      if (study_of_[t.id] != study_id) continue;
      if (!states.empty() && std::find(states.begin(), states.end(), t.state) == states.end()) continue;
      out.push_back(t);
    }
    return out;
  }
  Trial trial(int64_t trial_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return trials_.at(trial_id);
  }
  /// Test hook: a trial left running by a worker that died `age` seconds ago.
  void add_abandoned(int64_t study_id, double age) {
    const Trial t = create_trial(study_id, {{"x", 0.5}}, {{"x", Distribution{}}});
    std::lock_guard<std::mutex> lock(mu_);
    trials_[t.id].heartbeat = unix_now() - age;
  }
  std::atomic<int> heartbeats{0};

 private:
  std::mutex mu_;
  std::vector<StudyInfo> studies_;
  std::vector<Trial> trials_;
  std::map<int64_t, int64_t> study_of_;
};

// x = 0, 0.1, 0.2, ... (mod 1): deterministic and easy to check.
class StepSampler : public Sampler {
 public:
  std::map<std::string, double> sample(const SearchSpace& space, const std::vector<Trial>& history, Direction) override {
    std::map<std::string, double> p;
    for (const auto& [name, d] : space) p[name] = std::fmod(0.1 * static_cast<double>(history.size()), 1.0);
    return p;
  }
};

// value = -(x - 0.3)^2, reported over `steps` steps (value * step / steps).
class FnObjective : public Objective {
 public:
  explicit FnObjective(int steps = 3, double sleep_s = 0) : steps_(steps), sleep_s_(sleep_s) {}
  ObjectiveResult run(TrialContext& ctx) override {
    ++calls;
    const double x = ctx.params()["x"].get<double>();
    const double v = -(x - 0.3) * (x - 0.3);
    for (int s = 1; s <= steps_; ++s) {
      if (sleep_s_ > 0) std::this_thread::sleep_for(std::chrono::duration<double>(sleep_s_));
      if (ctx.interrupted()) return ObjectiveResult::failed("interrupted");
      if (ctx.report(s, v * s / steps_)) return ObjectiveResult::pruned(v * s / steps_);
    }
    return ObjectiveResult::complete(v);
  }
  std::atomic<int> calls{0};

 private:
  int steps_;
  double sleep_s_;
};

SearchSpace space_x() {
  Distribution d;
  d.low = 0;
  d.high = 1;
  return {{"x", d}};
}

TunerOptions opts(int64_t n) {
  TunerOptions o;
  o.n_trials = n;
  o.heartbeat_timeout_s = 2;
  return o;
}

TEST(Tuner, RunsTheRequestedTrialsAndFindsTheBest) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj;
  std::vector<int64_t> started, ended;
  TunerCallbacks cb;
  cb.on_trial_start = [&](const Trial& t) { started.push_back(t.number); };
  cb.on_trial_end = [&](const Trial& t) {
    ended.push_back(t.number);
    EXPECT_EQ(t.state, TrialState::kComplete);
    EXPECT_EQ(t.intermediate.size(), 3u);
  };
  Tuner tuner(st, study, space_x(), sampler, {}, obj, opts(6), cb);
  const auto s = tuner.run();
  EXPECT_EQ(s.reason, StopReason::kTrials);
  EXPECT_EQ(s.completed, 6);
  EXPECT_EQ(started, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ended, started);
  ASSERT_TRUE(s.best);
  EXPECT_EQ(s.best->number, 3);  // x = 0.3
  EXPECT_NEAR(*s.best->value, 0, 1e-12);
}

TEST(Tuner, AResumedStudyRunsOnlyTheRest) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj;
  {
    Tuner first(st, study, space_x(), sampler, {}, obj, opts(3));
    (void)first.run();
  }
  Tuner second(st, study, space_x(), sampler, {}, obj, opts(5));
  const auto s = second.run();
  EXPECT_EQ(s.started, 2);
  EXPECT_EQ(obj.calls, 5);
  EXPECT_EQ(st.trials(study.id, {}).size(), 5u);
}

TEST(Tuner, ParallelJobsRunExactlyTheRequestedCount) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj(2, 0.02);
  TunerOptions o = opts(12);
  o.jobs = 4;
  Tuner tuner(st, study, space_x(), sampler, {}, obj, o);
  const auto s = tuner.run();
  EXPECT_EQ(s.completed, 12);
  const auto all = st.trials(study.id, {});
  ASSERT_EQ(all.size(), 12u);
  std::set<int64_t> numbers;
  for (const auto& t : all) numbers.insert(t.number);
  EXPECT_EQ(numbers.size(), 12u);
}

TEST(Tuner, PrunerStopsTrialsWhichKeepTheirLastValue) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj(5);
  // Prune odd trials at step 2.
  PruneFn prune = [](const std::vector<Trial>& all, const Trial& t, Direction) {
    EXPECT_FALSE(all.empty());
    return t.number % 2 == 1 && t.intermediate.rbegin()->first == 2;
  };
  Tuner tuner(st, study, space_x(), sampler, prune, obj, opts(4));
  const auto s = tuner.run();
  EXPECT_EQ(s.completed, 2);
  EXPECT_EQ(s.pruned, 2);
  const auto t1 = st.trials(study.id, {})[1];
  EXPECT_EQ(t1.state, TrialState::kPruned);
  EXPECT_EQ(t1.intermediate.size(), 2u);
  ASSERT_TRUE(t1.value);
  EXPECT_NEAR(*t1.value, t1.intermediate.at(2), 1e-12);
}

// Records the trial numbers in the history of every sample() call, then proposes as StepSampler.
class RecordingSampler : public Sampler {
 public:
  std::map<std::string, double> sample(const SearchSpace& space, const std::vector<Trial>& history, Direction d) override {
    std::vector<int64_t> numbers;
    for (const auto& t : history) numbers.push_back(t.number);
    seen.push_back(numbers);
    return step_.sample(space, std::vector<Trial>(calls_++, Trial{}), d);
  }
  std::vector<std::vector<int64_t>> seen;

 private:
  StepSampler step_;
  std::size_t calls_ = 0;
};

TEST(Tuner, UnderHyperbandTheSamplerSeesOnlyTheNewTrialsBracket) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("hb", Direction::kMaximize);
  HyperbandPrunerOptions ho;
  ho.min_resource = 1;
  ho.max_resource = 9;  // 3 brackets with reduction factor 3
  ho.study_name = "hb";
  const HyperbandPruner pruner(ho);
  RecordingSampler sampler;
  FnObjective obj(3);
  Tuner tuner(st, study, space_x(), sampler,
              [&](const std::vector<Trial>& all, const Trial& t, Direction d) { return pruner.should_prune(all, t, d); }, obj,
              opts(16));
  tuner.set_sampler_view([&](const std::vector<Trial>& all, int64_t number) {
    Trial next;
    next.number = number;
    return pruner.bracket_trials(all, next);
  });
  (void)tuner.run();
  const auto all = st.trials(study.id, {});
  ASSERT_EQ(all.size(), 16u);
  ASSERT_EQ(pruner.n_brackets(all).value_or(0), 3);
  ASSERT_EQ(sampler.seen.size(), 16u);
  int filtered = 0;
  for (int64_t n = 0; n < 16; ++n) {
    // One job, a fresh study: trial n was proposed from exactly the earlier trials of its bracket.
    std::vector<int64_t> expected;
    for (int64_t m = 0; m < n; ++m) {
      if (pruner.bracket(all, m) == pruner.bracket(all, n)) expected.push_back(m);
    }
    EXPECT_EQ(sampler.seen[static_cast<std::size_t>(n)], expected) << "trial " << n;
    filtered += expected.size() < static_cast<std::size_t>(n);
  }
  EXPECT_GT(filtered, 0) << "every trial fell into one bracket: the test checks nothing";
}

TEST(Tuner, WithoutAViewTheSamplerSeesEveryTrial) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  RecordingSampler sampler;
  FnObjective obj(1);
  Tuner tuner(st, study, space_x(), sampler, {}, obj, opts(4));
  (void)tuner.run();
  EXPECT_EQ(sampler.seen, (std::vector<std::vector<int64_t>>{{}, {0}, {0, 1}, {0, 1, 2}}));
}

TEST(Tuner, StaleTrialsOfDeadWorkersAreFailedAndDoNotCount) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  st.add_abandoned(study.id, 100);
  StepSampler sampler;
  FnObjective obj;
  std::vector<int64_t> stale;
  TunerCallbacks cb;
  cb.on_stale = [&](const std::vector<int64_t>& n) { stale.insert(stale.end(), n.begin(), n.end()); };
  Tuner tuner(st, study, space_x(), sampler, {}, obj, opts(2), cb);
  (void)tuner.run();
  EXPECT_EQ(stale, (std::vector<int64_t>{0}));
  const auto all = st.trials(study.id, {});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].state, TrialState::kFailed);
  EXPECT_EQ(st.trials(study.id, {TrialState::kComplete}).size(), 2u);
}

TEST(Tuner, WaitsForARecentlyAbandonedTrialUntilItsHeartbeatTimesOut) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  st.add_abandoned(study.id, 0);  // its worker just died: not stale yet
  StepSampler sampler;
  FnObjective obj;
  TunerOptions o = opts(1);
  o.heartbeat_timeout_s = 0.6;
  Tuner tuner(st, study, space_x(), sampler, {}, obj, o);
  const auto t0 = std::chrono::steady_clock::now();
  const auto s = tuner.run();
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
  EXPECT_EQ(s.completed, 1);
  EXPECT_EQ(st.trials(study.id, {})[0].state, TrialState::kFailed);
}

TEST(Tuner, HeartbeatsKeepLongTrialsAlive) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj(4, 0.25);  // 1 s per trial, timeout 0.5 s: alive only through heartbeats
  TunerOptions o = opts(1);
  o.heartbeat_timeout_s = 0.5;
  Tuner tuner(st, study, space_x(), sampler, {}, obj, o);
  const auto s = tuner.run();
  EXPECT_EQ(s.completed, 1);
  EXPECT_GE(st.heartbeats.load(), 3);
}

TEST(Tuner, InterruptFailsTheRunningTrialAsInterrupted) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj(1000, 0.01);
  std::atomic<bool> interrupt{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    interrupt = true;
  });
  Tuner tuner(st, study, space_x(), sampler, {}, obj, opts(5));
  const auto s = tuner.run(&interrupt);
  stopper.join();
  EXPECT_EQ(s.reason, StopReason::kInterrupted);
  const auto all = st.trials(study.id, {});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state, TrialState::kFailed);
  EXPECT_EQ(all[0].user_attrs.at("fail_reason"), "interrupted");
}

TEST(Tuner, TimeoutStopsStartingTrials) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj(1, 0.1);
  TunerOptions o = opts(0);
  o.timeout_s = 0.45;
  Tuner tuner(st, study, space_x(), sampler, {}, obj, o);
  const auto s = tuner.run();
  EXPECT_EQ(s.reason, StopReason::kTimeout);
  EXPECT_GE(s.completed, 3);
  EXPECT_LE(s.completed, 6);
}

TEST(Tuner, ExhaustedSpaceStops) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  FnObjective obj;
  Tuner tuner(st, study, space_x(), sampler, {}, obj, opts(10));
  tuner.set_exhausted([](const std::vector<Trial>& all) { return all.size() >= 3; });
  const auto s = tuner.run();
  EXPECT_EQ(s.reason, StopReason::kExhausted);
  EXPECT_EQ(s.completed, 3);
}

class ConfigErrorObjective : public Objective {
 public:
  ObjectiveResult run(TrialContext&) override {
    auto r = ObjectiveResult::failed("kiln-ml exited with status 2: model.params.dropout must be in [0, 1)");
    r.config_error = true;
    return r;
  }
};

TEST(Tuner, AConfigurationErrorStopsTheStudy) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  ConfigErrorObjective obj;
  Tuner tuner(st, study, space_x(), sampler, {}, obj, opts(10));
  const auto s = tuner.run();
  EXPECT_EQ(s.reason, StopReason::kConfigError);
  EXPECT_EQ(s.started, 1);
  EXPECT_NE(s.config_error.find("trial 0: kiln-ml exited with status 2: model.params.dropout"), std::string::npos);
}

TEST(Tuner, ObjectiveExceptionsFailTheTrialWithTheMessage) {
  class Throwing : public Objective {
   public:
    ObjectiveResult run(TrialContext&) override { throw IoError("disk full"); }
  } obj;
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMaximize);
  StepSampler sampler;
  TunerOptions o = opts(2);
  o.max_consecutive_failures = 3;  // failed trials do not count toward n_trials
  Tuner tuner(st, study, space_x(), sampler, {}, obj, o);
  const auto s = tuner.run();
  EXPECT_EQ(s.reason, StopReason::kFailures);
  EXPECT_EQ(s.failed, 3);
  EXPECT_FALSE(s.best);
  EXPECT_EQ(st.trials(study.id, {})[0].user_attrs.at("fail_reason"), "disk full");
}

TEST(Tuner, OptionsAreValidated) {
  TunerOptions o;
  o.n_trials = 0;
  EXPECT_THROW(validate(o), ConfigError);
  o.n_trials = 5;
  o.jobs = 0;
  EXPECT_THROW(validate(o), ConfigError);
  o.jobs = 1;
  o.heartbeat_interval_s = 100;
  try {
    validate(o);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("heartbeat interval must be in (0, heartbeat timeout = 60)"), std::string::npos);
  }
}

// --- CommandObjective, driven through the loop ---

CommandObjectiveSpec command(const std::string& cmd, const std::string& metric_regex, const std::string& inter = "") {
  CommandObjectiveSpec s;
  s.command = cmd;
  s.metric_regex = metric_regex;
  s.intermediate_regex = inter;
  return s;
}

std::vector<Trial> run_command(const CommandObjectiveSpec& spec, int64_t n, PruneFn prune = {}) {
  MemoryStorage st;
  const auto study = st.create_or_load_study("s", Direction::kMinimize);
  StepSampler sampler;
  CommandObjective obj(spec);
  TunerOptions o = opts(n);
  o.max_consecutive_failures = 1;
  Tuner tuner(st, study, space_x(), sampler, std::move(prune), obj, o);
  (void)tuner.run();
  return st.trials(study.id, {});
}

TEST(CommandObjective, SubstitutesParametersAndReadsTheLastMatch) {
  const auto trials = run_command(
      command("echo 'loss=9'; echo \"x={x} env=$KILN_PARAM_X n=$KILN_TRIAL_NUMBER\" >&2; echo loss={x}", "loss=([-0-9.e]+)"), 3);
  ASSERT_EQ(trials.size(), 3u);
  for (const auto& t : trials) {
    ASSERT_EQ(t.state, TrialState::kComplete) << (t.user_attrs.count("fail_reason") ? t.user_attrs.at("fail_reason") : "");
    EXPECT_NEAR(*t.value, t.params.at("x"), 1e-12);
  }
  CommandObjective obj(command("train --x {x} --name {name} ${HOME} {unknown} {", "(.)"));
  EXPECT_EQ(obj.command_for({{"x", 0.25}, {"name", "adam"}}), "train --x 0.25 --name adam ${HOME} {unknown} {");
  EXPECT_EQ(obj.command_for({{"x", 64.0}}), "train --x 64 --name {name} ${HOME} {unknown} {");
}

TEST(CommandObjective, RegexThatMatchesNothingFailsTheTrialWithAClearReason) {
  const auto trials = run_command(command("echo accuracy 0.9", "loss=([0-9.]+)"), 1);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, TrialState::kFailed);
  EXPECT_NE(trials[0].user_attrs.at("fail_reason").find("metric_regex 'loss=([0-9.]+)' matched no line of the output of: "
                                                        "echo accuracy 0.9\nlast output:\naccuracy 0.9"),
            std::string::npos)
      << trials[0].user_attrs.at("fail_reason");
}

TEST(CommandObjective, NonNumericCaptureAndFailingCommand) {
  auto t = run_command(command("echo loss=abc", "loss=(\\w+)"), 1);
  EXPECT_NE(t[0].user_attrs.at("fail_reason").find("captured 'abc', which is not a number"), std::string::npos);
  t = run_command(command("echo boom >&2; exit 7", "(.*)"), 1);
  EXPECT_EQ(t[0].state, TrialState::kFailed);
  EXPECT_NE(t[0].user_attrs.at("fail_reason").find("command exited with status 7: echo boom >&2; exit 7\nlast output:\nboom"),
            std::string::npos)
      << t[0].user_attrs.at("fail_reason");
  EXPECT_NE(t[0].user_attrs.at("output_tail").find("boom"), std::string::npos);
}

TEST(CommandObjective, IntermediateValuesArePrunedByKillingTheCommand) {
  // Steps 1..3 printed at once; then a long sleep that only pruning cuts short.
  const auto t0 = std::chrono::steady_clock::now();
  const auto trials = run_command(command("for s in 1 2 3; do echo \"epoch $s val=0.$s\"; done; sleep 30; echo final=1",
                                          "final=([0-9.]+)", "epoch (\\d+) val=([0-9.]+)"),
                                  1, [](const std::vector<Trial>&, const Trial& t, Direction) {
                                    return t.intermediate.rbegin()->first >= 2;
                                  });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state, TrialState::kPruned);
  EXPECT_EQ(trials[0].intermediate, (std::map<int64_t, double>{{1, 0.1}, {2, 0.2}}));
  EXPECT_NEAR(*trials[0].value, 0.2, 1e-12);
}

TEST(CommandObjective, OneGroupIntermediateCountsSteps) {
  const auto trials = run_command(command("echo v=5; echo v=4; echo final=3", "final=(\\d+)", "v=(\\d+)"), 1);
  EXPECT_EQ(trials[0].state, TrialState::kComplete);
  EXPECT_EQ(trials[0].intermediate, (std::map<int64_t, double>{{0, 5}, {1, 4}}));
}

TEST(CommandObjective, TimeoutFailsTheTrial) {
  auto spec = command("sleep 20", "(.*)");
  spec.timeout_s = 0.3;
  const auto trials = run_command(spec, 1);
  EXPECT_NE(trials[0].user_attrs.at("fail_reason").find("timed out after 0.3 s"), std::string::npos);
}

TEST(TrainObjective, ParsesKilnTrainsEpochLine) {
  int64_t e = 0;
  double v = 0;
  const std::string line = "kiln: epoch 3/10  loss 0.4120  val_loss 0.5230  val_acc 0.8310  val_macro_f1 0.8123  lr 9.5e-04  1.2s";
  ASSERT_TRUE(parse_epoch_line(line, "val_macro_f1", e, v));
  EXPECT_EQ(e, 3);
  EXPECT_DOUBLE_EQ(v, 0.8123);
  ASSERT_TRUE(parse_epoch_line(line, "val_accuracy", e, v));
  EXPECT_DOUBLE_EQ(v, 0.8310);
  ASSERT_TRUE(parse_epoch_line(line, "val_loss", e, v));
  EXPECT_DOUBLE_EQ(v, 0.5230);
  EXPECT_FALSE(parse_epoch_line("kiln: epoch 3/10  loss 0.4120  lr 9.5e-04  1.2s", "val_macro_f1", e, v));
  EXPECT_FALSE(parse_epoch_line("kiln: fetching brown", "val_macro_f1", e, v));
}

TEST(TrainObjective, CommandLines) {
  TrainObjectiveSpec spec;
  TrainObjectiveOptions o;
  o.kiln_ml = "/b/kiln-ml";
  o.threads = 2;
  EXPECT_EQ(TrainObjective(spec, o).command_for("/t/config.yaml", "/t/run"),
            (std::vector<std::string>{"/b/kiln-ml", "--threads", "2", "run", "--config", "/t/config.yaml", "--out", "/t/run"}));
  spec.train_file = "/d/train.csv";
  spec.val_file = "/d/val.csv";
  o.threads = 0;
  EXPECT_EQ(TrainObjective(spec, o).command_for("/t/config.yaml", "/t/run"),
            (std::vector<std::string>{"/b/kiln-ml", "train", "--config", "/t/config.yaml", "--train", "/d/train.csv", "--val",
                                      "/d/val.csv", "--out", "/t/run"}));
}

}  // namespace
}  // namespace kiln::tune
