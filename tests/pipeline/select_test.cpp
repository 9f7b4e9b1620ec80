// Model selection: every candidate is reported, the winner is the best on validation, the budget
// (in passes over the training set) is respected exactly, and what cannot run says why.
#include "kiln/pipeline/select.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <ATen/Parallel.h>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "topic_data.h"

using namespace kiln;

namespace {

using pipeline_test::topics;

pipeline::SelectionOptions small_options() {
  pipeline::SelectionOptions o;
  o.candidates = pipeline::default_candidates();
  for (auto& c : o.candidates) {
    c.config.trainer.epochs = 3;
    c.config.trainer.calibrate = "none";
  }
  o.candidates[2].config.model.params["hidden"] = {16};  // a small MLP
  o.budget = pipeline::default_budget(o.candidates);
  o.ensemble = pipeline::SelectionOptions::EnsemblePolicy::kNever;  // the single-model rules; the ensemble has its own test
  return o;
}

}  // namespace

TEST(Selection, ReportsEveryCandidateAndChoosesTheBestOnValidation) {
  const auto train = topics(600, 1), val = topics(150, 2), test = topics(150, 3);
  const auto r = pipeline::select_model(small_options(), train, &val, &test);
  ASSERT_EQ(r.candidates.size(), 3u);
  double best = -1;
  for (const auto& c : r.candidates) {
    if (std::isfinite(c.val_macro_f1)) best = std::max(best, c.val_macro_f1);
  }
  int chosen = 0;
  for (const auto& c : r.candidates) {
    if (c.status == "chosen") {
      ++chosen;
      EXPECT_EQ(c.name, r.chosen);
      EXPECT_DOUBLE_EQ(c.val_macro_f1, best);
    }
    EXPECT_GE(c.epochs, 1) << c.name;
    EXPECT_LE(c.epochs, 3) << c.name;
  }
  EXPECT_EQ(chosen, 1);
  EXPECT_LE(r.work, r.budget);
  EXPECT_TRUE(r.result.has_test);
  const auto& sel = r.result.artifact.manifest.training.at("selection");
  EXPECT_EQ(sel.at("chosen"), r.chosen);
  EXPECT_EQ(sel.at("candidates").size(), 3u);
  EXPECT_NE(pipeline::format_selection_table(r).find("val macro-F1"), std::string::npos);
  // The same data and seed choose the same model with the same scores.
  const auto again = pipeline::select_model(small_options(), train, &val, &test);
  EXPECT_EQ(again.chosen, r.chosen);
  for (std::size_t k = 0; k < r.candidates.size(); ++k) {
    EXPECT_EQ(again.candidates[k].status, r.candidates[k].status);
    EXPECT_EQ(again.candidates[k].epochs, r.candidates[k].epochs);
  }
}

TEST(Selection, TheBudgetStopsAndSkipsCandidates) {
  const auto train = topics(400, 4), val = topics(100, 5);
  auto o = small_options();
  o.budget = 4;  // 3 epochs of the first candidate, 1 of the second, none of the third
  const auto r = pipeline::select_model(o, train, &val, nullptr);
  EXPECT_EQ(r.candidates[0].epochs, 3);
  EXPECT_EQ(r.candidates[1].epochs, std::min(1, r.candidates[1].epochs));
  EXPECT_EQ(r.candidates[2].status, "skipped: budget");
  EXPECT_LE(r.work, 4.0);
}

TEST(Selection, CarvesValidationFromTrainingWhenNoneIsGiven) {
  const auto train = topics(500, 6);
  auto o = small_options();
  o.candidates.resize(1);
  o.budget = 3;
  const auto r = pipeline::select_model(o, train, nullptr, nullptr);
  EXPECT_NE(r.validation.find("50 rows (10% of the training rows, stratified, seed 42)"), std::string::npos) << r.validation;
  EXPECT_TRUE(r.result.has_val);
  EXPECT_EQ(r.result.artifact.manifest.training.at("train_rows"), 450);
}

TEST(Selection, BadOptionsAreNamed) {
  const auto train = topics(100, 7);
  auto o = small_options();
  o.budget = 0;
  try {
    (void)pipeline::select_model(o, train, nullptr, nullptr);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--budget must be a number of passes over the training set > 0"), std::string::npos);
  }
  data::Dataset tiny;
  tiny.texts = {"a b", "c d", "e f"};
  tiny.labels = {"x", "y", "z"};
  try {
    (void)pipeline::select_model(small_options(), tiny, nullptr, nullptr);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("give --val FILE or choose a model with --model NAME"), std::string::npos) << e.what();
  }
}

TEST(Selection, MaxTimeCutsAndSaysSo) {
  const auto train = topics(300, 8), val = topics(90, 9);
  auto o = small_options();
  o.max_seconds = 1e-9;  // already over after the first epoch
  const auto r = pipeline::select_model(o, train, &val, nullptr);
  EXPECT_TRUE(r.cut_by_time);
  EXPECT_EQ(r.candidates[0].epochs, 1);
  EXPECT_EQ(r.candidates[0].status, "chosen");
  EXPECT_EQ(r.candidates[1].status, "skipped: --max-time");
  EXPECT_NE(pipeline::format_selection_table(r).find("cut short by --max-time"), std::string::npos);
}

TEST(Selection, TheEnsembleOfTheTwoBestIsChosenOnlyWhenItBeatsThemOnValidation) {
  const auto train = topics(600, 1), val = topics(150, 2);
  auto o = small_options();
  o.ensemble = pipeline::SelectionOptions::EnsemblePolicy::kIfBetter;
  const auto r = pipeline::select_model(o, train, &val, nullptr);
  ASSERT_EQ(r.candidates.size(), 4u);
  const auto& ens = r.candidates.back();
  EXPECT_EQ(ens.name, "ensemble");
  EXPECT_EQ(ens.work, 0.0);  // it trains nothing
  // Its members are the two best single candidates on validation.
  std::vector<std::pair<double, std::string>> singles;
  for (std::size_t k = 0; k + 1 < r.candidates.size(); ++k) {
    if (std::isfinite(r.candidates[k].val_macro_f1)) singles.emplace_back(r.candidates[k].val_macro_f1, r.candidates[k].name);
  }
  // Best first; a tie keeps the earlier candidate, as selection does.
  std::stable_sort(singles.begin(), singles.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  ASSERT_GE(singles.size(), 2u);
  EXPECT_EQ(ens.config.at("members"), nlohmann::json({singles[0].second, singles[1].second}));
  const auto& record = r.result.artifact.manifest.training.at("selection").at("ensemble");
  EXPECT_DOUBLE_EQ(record.at("val_macro_f1").get<double>(), ens.val_macro_f1);
  if (ens.val_macro_f1 > record.at("best_single_val_macro_f1").get<double>()) {
    EXPECT_EQ(ens.status, "chosen");
    EXPECT_EQ(r.chosen, "ensemble");
    EXPECT_EQ(r.result.artifact.manifest.model.family, "ensemble");
    EXPECT_EQ(r.result.artifact.manifest.training.at("ensemble").at("members").size(), 2u);
  } else {
    EXPECT_EQ(ens.status, "not better than " + singles[0].second);
    EXPECT_EQ(r.chosen, singles[0].second);
    EXPECT_NE(r.result.artifact.manifest.model.family, "ensemble");
  }
  // Deterministic, as the rest of the selection.
  const auto again = pipeline::select_model(o, train, &val, nullptr);
  EXPECT_EQ(again.chosen, r.chosen);
  EXPECT_DOUBLE_EQ(again.candidates.back().val_macro_f1, ens.val_macro_f1);
  // kAlways builds it either way.
  o.ensemble = pipeline::SelectionOptions::EnsemblePolicy::kAlways;
  const auto always = pipeline::select_model(o, train, &val, nullptr);
  EXPECT_EQ(always.chosen, "ensemble");
  EXPECT_EQ(always.result.artifact.manifest.model.family, "ensemble");
  EXPECT_TRUE(always.result.has_val);
}

// A second candidate behind the first at a rung is pruned by successive halving alone
// (keep_at_rungs 1, or without an ensemble), and goes on while it is among the best keep_at_rungs.
TEST(Selection, TheBestTwoAtARungGoOnForTheEnsemble) {
  const auto train = topics(400, 10), val = topics(120, 11);
  auto o = small_options();
  o.candidates.resize(2);
  for (auto& c : o.candidates) {
    c.config.trainer.epochs = 5;
    c.config.trainer.early_stopping_patience = 0;
  }
  o.candidates[1] = {"mlp", pipeline::default_candidates()[2].config};
  o.candidates[1].config.trainer.epochs = 5;
  o.candidates[1].config.trainer.early_stopping_patience = 0;
  o.candidates[1].config.trainer.calibrate = "none";
  o.candidates[1].config.model.params["hidden"] = {16};
  o.candidates[1].config.trainer.optimizer.lr = 1e-9;  // stays at its initial weights: behind fasttext at epoch 3
  o.budget = 10;
  auto run = [&](pipeline::SelectionOptions::EnsemblePolicy policy, int keep) {
    o.ensemble = policy;
    o.keep_at_rungs = keep;
    return pipeline::select_model(o, train, &val, nullptr);
  };
  using Policy = pipeline::SelectionOptions::EnsemblePolicy;
  const auto alone = run(Policy::kIfBetter, 1);
  ASSERT_GT(alone.candidates[0].val_macro_f1, alone.candidates[1].val_macro_f1);
  EXPECT_EQ(alone.candidates[1].status, "pruned at epoch 3");
  EXPECT_EQ(alone.candidates[1].epochs, 3);
  EXPECT_EQ(alone.result.artifact.manifest.training.at("selection").at("pruner").at("keep_at_rungs"), 1);
  const auto kept = run(Policy::kIfBetter, 2);
  EXPECT_EQ(kept.candidates[1].epochs, 5) << kept.candidates[1].status;
  EXPECT_EQ(kept.candidates[0].epochs, 5);
  EXPECT_EQ(kept.work, 10.0);
  EXPECT_EQ(kept.result.artifact.manifest.training.at("selection").at("pruner").at("keep_at_rungs"), 2);
  // Without an ensemble a second candidate is of no use behind the first: pruned as before.
  const auto single = run(Policy::kNever, 2);
  EXPECT_EQ(single.candidates[1].status, "pruned at epoch 3");
  try {
    (void)run(Policy::kIfBetter, 0);
    FAIL() << "keep_at_rungs 0 was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("selection keep_at_rungs must be >= 1"), std::string::npos) << e.what();
  }
}

TEST(Selection, GivesTheCallersThreadCountBackAfterSharingTheCores) {
  // While candidate 0 trains on its own thread the others run one thread short; afterwards the
  // calling thread's team is what the caller had set, not the process default.
  if (core::threads() < 2) GTEST_SKIP() << "needs 2 threads for candidate 0 to train beside the others";
  const auto train = topics(300, 21), val = topics(90, 22);
  auto o = small_options();
  o.overlap_first = true;
  at::parallel_for(0, 1, 1, [](int64_t, int64_t) {});  // LibTorch's per-thread set-up first
  const int before = at::get_num_threads();
  core::set_openmp_threads(1);
  (void)pipeline::select_model(o, train, &val, nullptr);
  EXPECT_EQ(at::get_num_threads(), 1);
  core::set_openmp_threads(before);
  (void)pipeline::select_model(o, train, &val, nullptr);
  EXPECT_EQ(at::get_num_threads(), before);
}

TEST(Selection, TrainingTheFirstCandidateOnItsOwnThreadChangesNothing) {
  // The same selection with candidate 0 (fasttext, per-example SGD) overlapped and in turn: the
  // same statuses, epochs and validation scores, with the default budget (candidate 2, the MLP,
  // then also trains on a thread of its own beside candidate 1, L-BFGS) and with one that binds
  // (the others then wait for candidate 0's epoch count, and candidate 2 trains after candidate 1).
  // Eight epochs each with the default budget: long enough for the pacing of the three threads
  // (a candidate ahead waits at an epoch's end for the others) to take turns.
  const auto train = topics(500, 11), val = topics(120, 12);
  for (const double budget : {9.0, 5.0, 24.0}) {
    auto o = small_options();
    if (budget == 24.0) {
      for (auto& c : o.candidates) c.config.trainer.epochs = 8;
    }
    o.ensemble = pipeline::SelectionOptions::EnsemblePolicy::kIfBetter;
    o.budget = budget;
    o.overlap_first = false;
    const auto in_turn = pipeline::select_model(o, train, &val, nullptr);
    o.overlap_first = true;
    const auto overlapped = pipeline::select_model(o, train, &val, nullptr);
    ASSERT_EQ(overlapped.candidates.size(), in_turn.candidates.size());
    for (std::size_t k = 0; k < in_turn.candidates.size(); ++k) {
      const auto &a = in_turn.candidates[k], &b = overlapped.candidates[k];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.status, b.status) << a.name << " budget " << budget;
      EXPECT_EQ(a.epochs, b.epochs) << a.name;
      EXPECT_EQ(a.best_epoch, b.best_epoch) << a.name;
      if (std::isfinite(a.val_macro_f1)) {
        EXPECT_DOUBLE_EQ(a.val_macro_f1, b.val_macro_f1) << a.name;
      }
    }
    EXPECT_EQ(overlapped.chosen, in_turn.chosen);
    EXPECT_DOUBLE_EQ(overlapped.work, in_turn.work);
  }
}
