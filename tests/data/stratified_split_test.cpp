#include "kiln/data/stratified_split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/log.h"

using kiln::ConfigError;
using kiln::DataError;
using kiln::data::Fold;
using kiln::data::parse_rare_class_policy;
using kiln::data::RareClassPolicy;
using kiln::data::SplitOptions;
using kiln::data::SplitResult;
using kiln::data::stratified_kfold;
using kiln::data::stratified_split;

namespace {

// Golden cases written by tests/golden/make_split_golden.py from scikit-learn.
const nlohmann::json& golden() {
  static const nlohmann::json g = [] {
    std::ifstream in(std::string(KILN_GOLDEN_DIR) + "/split_golden.json");
    if (!in) throw std::runtime_error("cannot open " + std::string(KILN_GOLDEN_DIR) + "/split_golden.json");
    return nlohmann::json::parse(in);
  }();
  return g;
}

// Labels of a golden case: class names expanded from run-length encoded class ids.
std::vector<std::string> labels_of(const nlohmann::json& c) {
  const auto names = c.at("classes").get<std::vector<std::string>>();
  std::vector<std::string> labels;
  for (const auto& run : c.at("y_rle")) labels.insert(labels.end(), run[1].get<std::size_t>(), names[run[0].get<std::size_t>()]);
  return labels;
}

// Rows of each class (by the golden's class order) among `rows`.
std::vector<std::size_t> per_class(const std::vector<std::size_t>& rows, const std::vector<std::string>& labels,
                                   const std::vector<std::string>& names) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < names.size(); ++i) index[names[i]] = i;
  std::vector<std::size_t> counts(names.size(), 0);
  for (std::size_t r : rows) ++counts[index.at(labels[r])];
  return counts;
}

// Every row in exactly one of the result's vectors.
void expect_partition(const SplitResult& r, std::size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto* part : {&r.train, &r.val, &r.test, &r.dropped}) {
    for (std::size_t i : *part) {
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
}

std::vector<std::string> make_labels(const std::vector<std::pair<std::string, std::size_t>>& counts) {
  std::vector<std::string> labels;
  for (const auto& [name, n] : counts) labels.insert(labels.end(), n, name);
  // Interleave deterministically so rows of a class are not contiguous.
  std::vector<std::string> mixed(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) mixed[(i * 7919) % labels.size()] = labels[i];
  return labels.size() % 7919 == 0 ? labels : mixed;  // a permutation unless 7919 (prime) divides the size
}

template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

// Captures warnings for the lifetime of the object; restores a stderr sink afterwards.
class WarningCapture {
 public:
  WarningCapture() {
    kiln::core::set_log_sink([this](kiln::core::LogLevel level, std::string_view m) {
      if (level == kiln::core::LogLevel::kWarning) warnings.emplace_back(m);
    });
  }
  ~WarningCapture() {
    kiln::core::set_log_sink([](kiln::core::LogLevel, std::string_view m) { std::cerr << "kiln: " << m << '\n'; });
  }
  std::vector<std::string> warnings;
};

}  // namespace

TEST(StratifiedSplit, MatchesScikitLearnCounts) {
  const auto& cases = golden().at("split_cases");
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto labels = labels_of(c);
    const auto names = c.at("classes").get<std::vector<std::string>>();
    SplitOptions opt;
    opt.test_size = c.at("test_size").get<double>();
    opt.val_size = c.at("val_size").get<double>();
    opt.rare_classes = parse_rare_class_policy(c.at("rare_classes").get<std::string>());
    for (std::uint64_t seed : {0u, 1u, 42u, 2024u}) {
      opt.seed = seed;
      const SplitResult r = stratified_split(labels, opt);
      expect_partition(r, labels.size());
      const std::size_t n_rare_train = c.at("rare_classes") == "train-only" ? r.rare_classes.size() : 0;
      EXPECT_EQ(r.test.size(), c.at("n_test").get<std::size_t>());
      EXPECT_EQ(r.val.size(), c.at("n_val").get<std::size_t>());
      EXPECT_EQ(r.train.size(), c.at("n_split").get<std::size_t>() - r.test.size() - r.val.size() + n_rare_train);
      const bool ties = c.at("ties").get<bool>();
      for (const char* split : {"train", "val", "test"}) {
        const auto& rows = split[1] == 'r' ? r.train : split[0] == 'v' ? r.val : r.test;
        const auto got = per_class(rows, labels, names);
        const auto lo = c.at(std::string(split) + "_lo").get<std::vector<std::size_t>>();
        const auto hi = c.at(std::string(split) + "_hi").get<std::vector<std::size_t>>();
        for (std::size_t k = 0; k < names.size(); ++k) {
          EXPECT_GE(got[k], lo[k]) << split << " class " << names[k] << " seed " << seed;
          EXPECT_LE(got[k], hi[k]) << split << " class " << names[k] << " seed " << seed;
          if (!ties) {
            EXPECT_EQ(lo[k], hi[k]) << "golden: no tie but a range for " << names[k];
          }
        }
      }
    }
  }
}

TEST(StratifiedSplit, GoldenHasTieAndTieFreeCases) {
  std::size_t ties = 0, total = 0;
  for (const auto& c : golden().at("split_cases")) {
    ++total;
    ties += c.at("ties").get<bool>() ? 1 : 0;
  }
  EXPECT_GE(ties, 3u);
  EXPECT_GE(total - ties, 3 * ties);
}

TEST(StratifiedSplit, TiesAreBrokenBothWaysAcrossSeeds) {
  // Four classes of 5 rows, 14 training rows: each class's share is 3.5, so two classes get 4.
  const auto labels = make_labels({{"a", 5}, {"b", 5}, {"c", 5}, {"d", 5}});
  std::map<std::vector<std::size_t>, int> outcomes;
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    SplitOptions opt;
    opt.test_size = 0.3;
    opt.seed = seed;
    const auto got = per_class(stratified_split(labels, opt).train, labels, {"a", "b", "c", "d"});
    for (std::size_t v : got) EXPECT_TRUE(v == 3 || v == 4);
    EXPECT_EQ(got[0] + got[1] + got[2] + got[3], 14u);
    ++outcomes[got];
  }
  EXPECT_GT(outcomes.size(), 1u);
}

TEST(StratifiedSplit, ErrorsWhereScikitLearnErrors) {
  for (const auto& c : golden().at("split_errors")) {
    SCOPED_TRACE(c.at("name").get<std::string>() + ": scikit-learn says " + c.at("sklearn_error").get<std::string>());
    SplitOptions opt;
    opt.test_size = c.at("test_size").get<double>();
    opt.val_size = c.at("val_size").get<double>();
    EXPECT_THROW((void)stratified_split(labels_of(c), opt), kiln::Error);
  }
}

TEST(StratifiedSplit, KFoldMatchesScikitLearnCounts) {
  for (const auto& c : golden().at("kfold_cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto labels = labels_of(c);
    const auto names = c.at("classes").get<std::vector<std::string>>();
    const int k = c.at("k").get<int>();
    const auto expected = c.at("fold_counts").get<std::vector<std::vector<std::size_t>>>();
    for (std::uint64_t seed : {0u, 7u}) {
      WarningCapture capture;
      const std::vector<Fold> folds = stratified_kfold(labels, k, seed);
      EXPECT_EQ(!capture.warnings.empty(), c.at("warns").get<bool>());
      ASSERT_EQ(folds.size(), static_cast<std::size_t>(k));
      std::vector<int> in_test(labels.size(), 0);
      for (std::size_t f = 0; f < folds.size(); ++f) {
        EXPECT_EQ(per_class(folds[f].test, labels, names), expected[f]) << "fold " << f;
        EXPECT_TRUE(std::is_sorted(folds[f].test.begin(), folds[f].test.end()));
        EXPECT_TRUE(std::is_sorted(folds[f].train.begin(), folds[f].train.end()));
        EXPECT_EQ(folds[f].train.size() + folds[f].test.size(), labels.size());
        std::vector<std::size_t> both;
        std::set_intersection(folds[f].train.begin(), folds[f].train.end(), folds[f].test.begin(),
                              folds[f].test.end(), std::back_inserter(both));
        EXPECT_TRUE(both.empty());
        for (std::size_t i : folds[f].test) ++in_test[i];
      }
      EXPECT_TRUE(std::all_of(in_test.begin(), in_test.end(), [](int v) { return v == 1; }));
    }
  }
}

TEST(StratifiedSplit, KFoldErrorsWhereScikitLearnErrors) {
  for (const auto& c : golden().at("kfold_errors")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    EXPECT_THROW((void)stratified_kfold(labels_of(c), c.at("k").get<int>(), 0), ConfigError);
  }
}

TEST(StratifiedSplit, DisjointAndCoveringWithValidation) {
  const auto labels = make_labels({{"x", 400}, {"y", 250}, {"z", 90}, {"w", 13}});
  SplitOptions opt;
  opt.test_size = 0.15;
  opt.val_size = 0.1;
  const SplitResult r = stratified_split(labels, opt);
  expect_partition(r, labels.size());
  EXPECT_EQ(r.test.size(), 113u);  // ceil(0.15 * 753)
  EXPECT_EQ(r.val.size(), 76u);    // ceil(0.1 * 753), relative to the whole
  EXPECT_TRUE(r.dropped.empty());
  EXPECT_TRUE(r.rare_classes.empty());
}

TEST(StratifiedSplit, SameSeedSameSplit) {
  const auto labels = make_labels({{"pos", 321}, {"neg", 123}, {"neutral", 57}});
  SplitOptions opt;
  opt.val_size = 0.1;
  opt.seed = 99;
  const SplitResult a = stratified_split(labels, opt);
  const SplitResult b = stratified_split(labels, opt);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.test, b.test);
  const auto fa = stratified_kfold(labels, 5, 3);
  const auto fb = stratified_kfold(labels, 5, 3);
  for (std::size_t f = 0; f < 5; ++f) EXPECT_EQ(fa[f].test, fb[f].test);
}

TEST(StratifiedSplit, DifferentSeedsDiffer) {
  const auto labels = make_labels({{"pos", 321}, {"neg", 123}, {"neutral", 57}});
  SplitOptions opt;
  opt.seed = 1;
  const SplitResult a = stratified_split(labels, opt);
  opt.seed = 2;
  const SplitResult b = stratified_split(labels, opt);
  EXPECT_NE(a.test, b.test);
  auto ta = a.test, tb = b.test;
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  EXPECT_NE(ta, tb);  // different rows, not just a different order
  EXPECT_NE(stratified_kfold(labels, 4, 1)[0].test, stratified_kfold(labels, 4, 2)[0].test);
}

TEST(StratifiedSplit, SplitIsPinnedAcrossPlatforms) {
  // Rows chosen for a fixed seed are part of Kiln's reproducibility contract: the generator and the
  // draws are specified exactly, so these indices are the same with every compiler and library.
  const std::vector<std::string> labels = {"a", "b", "a", "c", "b", "a", "c", "a", "b", "c", "a", "b"};
  SplitOptions opt;
  opt.test_size = 0.25;
  opt.seed = 42;
  const SplitResult r = stratified_split(labels, opt);
  EXPECT_EQ(r.test, (std::vector<std::size_t>{5, 11, 6}));
  EXPECT_EQ(r.train, (std::vector<std::size_t>{9, 8, 0, 1, 3, 4, 7, 2, 10}));
  const auto folds = stratified_kfold(labels, 3, 42);
  EXPECT_EQ(folds[0].test, (std::vector<std::size_t>{4, 7, 9, 10}));
}

TEST(StratifiedSplit, SplitsResultsAreShuffled) {
  std::vector<std::string> labels(2000, "only");
  SplitOptions opt;
  const SplitResult r = stratified_split(labels, opt);
  EXPECT_FALSE(std::is_sorted(r.train.begin(), r.train.end()));
  EXPECT_FALSE(std::is_sorted(r.test.begin(), r.test.end()));
  EXPECT_EQ(r.test.size(), 400u);
}

TEST(StratifiedSplit, RareClassesDropped) {
  const auto labels = make_labels({{"big", 40}, {"mid", 12}, {"solo1", 1}, {"solo2", 1}});
  SplitOptions opt;
  opt.rare_classes = RareClassPolicy::kDrop;
  const SplitResult r = stratified_split(labels, opt);
  expect_partition(r, labels.size());
  EXPECT_EQ(r.rare_classes, (std::vector<std::string>{"solo1", "solo2"}));
  ASSERT_EQ(r.dropped.size(), 2u);
  EXPECT_LT(r.dropped[0], r.dropped[1]);
  for (std::size_t i : r.dropped) EXPECT_EQ(labels[i].substr(0, 4), "solo");
  EXPECT_EQ(r.test.size(), 11u);  // ceil(0.2 * 52): sizes count only the rows being split
}

TEST(StratifiedSplit, RareClassesTrainOnly) {
  const auto labels = make_labels({{"big", 40}, {"mid", 12}, {"solo", 1}});
  SplitOptions opt;
  opt.rare_classes = RareClassPolicy::kTrainOnly;
  const SplitResult r = stratified_split(labels, opt);
  expect_partition(r, labels.size());
  EXPECT_EQ(r.rare_classes, (std::vector<std::string>{"solo"}));
  EXPECT_TRUE(r.dropped.empty());
  EXPECT_EQ(per_class(r.train, labels, {"big", "mid", "solo"}), (std::vector<std::size_t>{32, 9, 1}));
  EXPECT_EQ(per_class(r.test, labels, {"big", "mid", "solo"}), (std::vector<std::size_t>{8, 3, 0}));
}

TEST(StratifiedSplit, ErrorOneRowClassesListed) {
  std::vector<std::pair<std::string, std::size_t>> counts = {{"big", 50}};
  for (int i = 0; i < 13; ++i) counts.push_back({"r" + std::to_string(10 + i), 1});
  const auto labels = make_labels(counts);
  EXPECT_EQ(message_of<DataError>([&] { (void)stratified_split(labels, SplitOptions{}); }),
            "13 classes have only 1 row, too few to stratify (a class needs a row in train and one in test): "
            "'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'r16', 'r17', 'r18', 'r19' and 3 more; "
            "add rows to these classes, or use --rare-classes drop|train-only");
  const auto one = make_labels({{"big", 50}, {"lonely", 1}});
  EXPECT_EQ(message_of<DataError>([&] { (void)stratified_split(one, SplitOptions{}); }),
            "1 class has only 1 row, too few to stratify (a class needs a row in train and one in test): "
            "'lonely'; add rows to these classes, or use --rare-classes drop|train-only");
}

TEST(StratifiedSplit, ErrorEveryClassRare) {
  SplitOptions opt;
  opt.rare_classes = RareClassPolicy::kDrop;
  EXPECT_EQ(message_of<DataError>([&] { (void)stratified_split({"a", "b", "c"}, opt); }),
            "no class has 2 or more rows (3 classes, 1 row each), so there is nothing to split; add rows");
}

TEST(StratifiedSplit, ErrorNoRows) {
  EXPECT_EQ(message_of<DataError>([] { (void)stratified_split({}, SplitOptions{}); }), "no rows to split");
  EXPECT_EQ(message_of<DataError>([] { (void)stratified_kfold({}, 5, 0); }), "no rows to split into folds");
}

TEST(StratifiedSplit, ErrorTestSizeOutOfRange) {
  const auto labels = make_labels({{"a", 10}, {"b", 10}});
  for (double bad : {0.0, -0.5, 1.5, 7.25, std::nan(""), HUGE_VAL}) {
    SplitOptions opt;
    opt.test_size = bad;
    const std::string m = message_of<ConfigError>([&] { (void)stratified_split(labels, opt); });
    EXPECT_EQ(m.rfind("--test-size must be a proportion in (0, 1) or a whole row count >= 1, got ", 0), 0u) << m;
  }
  SplitOptions opt;
  opt.test_size = -0.5;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size must be a proportion in (0, 1) or a whole row count >= 1, got -0.5");
}

TEST(StratifiedSplit, ErrorValSizeOutOfRange) {
  SplitOptions opt;
  opt.val_size = -1;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split({"a", "a", "b", "b"}, opt); }),
            "--val-size must be a proportion in (0, 1) or a whole row count >= 1 (0 for none), got -1");
}

TEST(StratifiedSplit, ErrorSizesAddUpToOne) {
  SplitOptions opt;
  opt.test_size = 0.5;
  opt.val_size = 0.5;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split({"a", "a", "b", "b"}, opt); }),
            "--test-size 0.5 and --val-size 0.5 add up to 1 or more, leaving nothing to train on; lower one of them");
}

TEST(StratifiedSplit, ErrorTestCountNotBelowRows) {
  const auto labels = make_labels({{"a", 10}, {"b", 8}});
  SplitOptions opt;
  opt.test_size = 18;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size 18 is not smaller than the 18 rows to split; use --test-size <= 0.888 (or 16 rows)");
}

TEST(StratifiedSplit, ErrorProportionTakesEveryRow) {
  const auto labels = make_labels({{"a", 6}, {"b", 4}});
  SplitOptions opt;
  opt.test_size = 0.99;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size 0.99 gives 10 test rows of the 10 rows to split, leaving none to train on; "
            "use --test-size <= 0.8 (or 8 rows)");
}

TEST(StratifiedSplit, ErrorTestSmallerThanClassCount) {
  const auto labels = make_labels({{"a", 100}, {"b", 80}, {"c", 60}, {"d", 40}, {"e", 20}});
  SplitOptions opt;
  opt.test_size = 0.01;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size 0.01 gives 3 test rows but there are 5 classes; each class needs at least one test row: "
            "use --test-size >= 0.017 (or 5 rows)");
  opt.test_size = 4;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size 4 gives 4 test rows but there are 5 classes; each class needs at least one test row: "
            "use --test-size >= 0.017 (or 5 rows)");
}

TEST(StratifiedSplit, ErrorTrainSmallerThanClassCount) {
  const auto labels = make_labels({{"a", 4}, {"b", 3}, {"c", 3}, {"d", 2}, {"e", 2}});
  SplitOptions opt;
  opt.test_size = 0.9;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size 0.9 leaves 1 training row but there are 5 classes; each class needs at least one training "
            "row: use --test-size <= 0.642 (or 9 rows)");
}

TEST(StratifiedSplit, ErrorValidationSmallerThanClassCount) {
  const auto labels = make_labels({{"a", 100}, {"b", 80}, {"c", 60}, {"d", 40}, {"e", 20}});
  SplitOptions opt;
  opt.val_size = 0.01;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--val-size 0.01 gives 3 validation rows but there are 5 classes; each class needs at least one "
            "validation row: use --val-size >= 0.017 (or 5 rows)");
}

TEST(StratifiedSplit, ErrorValidationTakesTheRest) {
  const auto labels = make_labels({{"a", 10}, {"b", 10}});
  SplitOptions opt;
  opt.test_size = 5;
  opt.val_size = 15;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--val-size 15 gives 15 validation rows but only 15 rows remain after --test-size 5 takes 5; "
            "lower --val-size or --test-size so that together they leave at least 2 rows (one per class) "
            "for training");
}

TEST(StratifiedSplit, ErrorValidationLeavesTooFewTrainingRows) {
  const auto labels = make_labels({{"a", 10}, {"b", 10}, {"c", 10}});
  SplitOptions opt;
  opt.test_size = 0.5;
  opt.val_size = 13;
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_split(labels, opt); }),
            "--test-size 0.5 and --val-size 13 leave 2 training rows but there are 3 classes; each class needs at "
            "least one training row: lower them so that together they take at most 27 rows");
}

TEST(StratifiedSplit, ErrorClassShortAfterTestSplit) {
  // 'rare' has 2 rows; the test split takes one, leaving one for train + validation.
  const auto labels = make_labels({{"common", 20}, {"mid", 10}, {"rare", 2}});
  SplitOptions opt;
  opt.test_size = 0.2;
  opt.val_size = 0.1;
  EXPECT_EQ(message_of<DataError>([&] { (void)stratified_split(labels, opt); }),
            "1 class has fewer than 2 rows left after the test split, too few to split between train and "
            "validation: 'rare' (2 rows, 1 left); add rows to these classes, lower --test-size, or set --val-size 0");
}

TEST(StratifiedSplit, ParseRareClassPolicy) {
  EXPECT_EQ(parse_rare_class_policy("error"), RareClassPolicy::kError);
  EXPECT_EQ(parse_rare_class_policy("drop"), RareClassPolicy::kDrop);
  EXPECT_EQ(parse_rare_class_policy("train-only"), RareClassPolicy::kTrainOnly);
  EXPECT_EQ(message_of<ConfigError>([] { (void)parse_rare_class_policy("train_only"); }),
            "--rare-classes must be one of error, drop, train-only; got 'train_only'");
}

TEST(StratifiedSplit, KFoldErrors) {
  const auto labels = make_labels({{"a", 3}, {"b", 2}, {"c", 4}});
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_kfold(labels, 1, 0); }), "--folds must be at least 2, got 1");
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_kfold(labels, 10, 0); }),
            "--folds 10 is more than the 9 rows; use --folds <= 9");
  EXPECT_EQ(message_of<ConfigError>([&] { (void)stratified_kfold(labels, 5, 0); }),
            "--folds 5 is more than the rows of every class (the largest, 'c', has 4); use --folds <= 4");
}

TEST(StratifiedSplit, KFoldWarnsForSmallClass) {
  const auto labels = make_labels({{"a", 30}, {"b", 20}, {"tiny", 3}});
  WarningCapture capture;
  (void)stratified_kfold(labels, 5, 0);
  ASSERT_EQ(capture.warnings.size(), 1u);
  EXPECT_EQ(capture.warnings[0], "class 'tiny' has only 3 rows, fewer than --folds 5: some test folds will have no row of it");
}

TEST(StratifiedSplit, MillionRows) {
  std::vector<std::string> labels(1'000'000);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = "class_" + std::to_string((i * i + 7 * i) % 97);
  SplitOptions opt;
  opt.val_size = 0.1;
  const SplitResult r = stratified_split(labels, opt);
  expect_partition(r, labels.size());
  EXPECT_EQ(r.test.size(), 200'000u);
  EXPECT_EQ(r.val.size(), 100'000u);
  const auto folds = stratified_kfold(labels, 5, 0);
  std::size_t total = 0;
  for (const auto& f : folds) total += f.test.size();
  EXPECT_EQ(total, labels.size());
}
