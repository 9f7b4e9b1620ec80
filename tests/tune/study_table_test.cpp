// The text `kiln tune` prints: table rows, failure reasons on one line, the best line, the stop
// line and the --show listing.
#include "kiln/tune/study_table.h"

#include <gtest/gtest.h>

#include "tune_test_util.h"

namespace kiln::tune {
namespace {

Trial make_trial(int64_t number, TrialState state, std::optional<double> value, double x) {
  Trial t;
  t.number = number;
  t.state = state;
  t.value = value;
  t.params = {{"x", x}, {"k", 1}};
  t.distributions = {{"x", make_distribution(Distribution::Kind::kFloat, 0, 1)}};
  Distribution k;
  k.kind = Distribution::Kind::kCategorical;
  k.choices = {"a", "b"};
  t.distributions["k"] = k;
  t.datetime_start = 100;
  t.datetime_complete = 102.5;
  return t;
}

TEST(StudyTable, RowsShowStateValueDurationAndShortParams) {
  EXPECT_EQ(table_header("score"), "trial state     score         duration  params");
  EXPECT_EQ(trial_row(make_trial(3, TrialState::kComplete, 0.123456789, 0.333333333)),
            "3     complete  0.123457      2.5s      k=b x=0.3333");
  Trial pruned = make_trial(12, TrialState::kPruned, 0.5, 0.25);
  pruned.intermediate = {{0, 0.2}, {2, 0.5}};
  EXPECT_EQ(trial_row(pruned), "12    pruned    0.5 @2        2.5s      k=b x=0.25");
}

TEST(StudyTable, FailedRowsCarryTheirReasonOnOneLine) {
  Trial failed = make_trial(1, TrialState::kFailed, std::nullopt, 0.5);
  failed.user_attrs["fail_reason"] = "command exited with status 1;\nsee the output\nlast output:\n  Traceback\n  ValueError: boom  \n\n";
  EXPECT_EQ(trial_row(failed), "1     failed    -             2.5s      k=b x=0.5  (command exited with status 1 | last output: "
                               "ValueError: boom)");
  EXPECT_EQ(compact_reason("no output at all"), "no output at all");
  EXPECT_EQ(compact_reason(std::string(200, 'a')), std::string(157, 'a') + "...");
}

TEST(StudyTable, BestLineHasExactValues) {
  EXPECT_EQ(best_line(std::nullopt), "no complete trial yet");
  EXPECT_EQ(best_line(make_trial(7, TrialState::kComplete, 0.9, 0.123456789)),
            "best value 0.9 at trial 7: k=b x=0.123456789");
}

TEST(StudyTable, StopLineNamesTheReasonAndCounts) {
  TuneSummary s;
  s.reason = StopReason::kInterrupted;
  s.completed = 2;
  s.pruned = 1;
  s.failed = 1;
  StateCounts c;
  c.complete = 5;
  c.pruned = 2;
  c.failed = 3;
  EXPECT_EQ(stop_line(s, c),
            "stopped: interrupted; run the same command again to resume. This run: 2 complete, 1 pruned, 1 failed; "
            "study: 5 complete, 2 pruned, 3 failed");
  s.reason = StopReason::kExhausted;
  EXPECT_EQ(stop_line(s, c).rfind("stopped: the grid is exhausted. ", 0), 0u);
}

TEST(StudyTable, ListingCountsEveryStateAndEndsWithTheBest) {
  StudyInfo study;
  study.name = "quad";
  study.direction = Direction::kMaximize;
  study.user_attrs["metric"] = "score";
  Trial running = make_trial(2, TrialState::kRunning, std::nullopt, 0.1);
  running.datetime_complete.reset();
  running.datetime_start = unix_now();
  const std::vector<Trial> trials = {make_trial(0, TrialState::kComplete, 0.4, 0.4),
                                     make_trial(1, TrialState::kComplete, 0.8, 0.8), running};
  const StateCounts c = count_states(trials);
  EXPECT_EQ(c.complete, 2);
  EXPECT_EQ(c.running, 1);
  const std::string s = study_listing(study, trials, {});
  EXPECT_EQ(s.rfind("study quad (maximize score)\ntrial state     score", 0), 0u) << s;
  EXPECT_NE(s.find("\n3 trials: 2 complete, 0 pruned, 0 failed, 1 running\nbest value 0.8 at trial 1: k=b x=0.8\n"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace kiln::tune
