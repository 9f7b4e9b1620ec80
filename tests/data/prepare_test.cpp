// prepare_data: load + clean + stratified split in one call (kiln prepare and kiln run), its report
// and summary table.
#include "kiln/data/prepare.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "kiln/core/error.h"

namespace fs = std::filesystem;
using kiln::data::PreparedData;
using kiln::data::PrepareOptions;

namespace {

std::string write_file(const std::string& name, const std::string& content) {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_prepare_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  fs::path p = dir / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

// 20 rows of "a", 10 of "b", one of "rare", one without text.
std::string sample_csv() {
  std::string s = "text,label\n";
  for (int i = 0; i < 20; ++i) s += "a" + std::to_string(i) + ",a\n";
  for (int i = 0; i < 10; ++i) s += "b" + std::to_string(i) + ",b\n";
  return s + "lonely,rare\n,b\n";
}

std::string prepare_error(const std::string& path, const PrepareOptions& o) {
  try {
    (void)kiln::data::prepare_data(path, o);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(PrepareData, SplitsTheCleanedRowsAsStratifiedSplitDoes) {
  PrepareOptions o;
  o.split.val_size = 0.2;
  o.split.rare_classes = kiln::data::RareClassPolicy::kTrainOnly;
  const PreparedData p = kiln::data::prepare_data(write_file("s.csv", sample_csv()), o);
  EXPECT_EQ(p.dataset.size(), 31u);
  EXPECT_EQ(p.report.dropped.at("missing_text"), 1);
  const auto direct = kiln::data::stratified_split(p.dataset.labels, o.split);
  EXPECT_EQ(p.split.train, direct.train);
  EXPECT_EQ(p.split.val, direct.val);
  EXPECT_EQ(p.split.test, direct.test);
  EXPECT_TRUE(p.has_val);
  // The subsets hold the split's rows, in the split's order.
  const auto test = p.test();
  ASSERT_EQ(test.size(), p.split.test.size());
  for (std::size_t i = 0; i < test.size(); ++i) EXPECT_EQ(test.texts[i], p.dataset.texts[p.split.test[i]]);
  EXPECT_EQ(p.train().size() + p.val().size() + test.size(), 31u);
  const auto train = p.train();
  const std::set<std::string> train_texts(train.texts.begin(), train.texts.end());
  EXPECT_TRUE(train_texts.count("lonely"));
}

TEST(PrepareData, ReportRecordsTheSplits) {
  PrepareOptions o;
  o.split.seed = 7;
  o.split.rare_classes = kiln::data::RareClassPolicy::kDrop;
  const PreparedData p = kiln::data::prepare_data(write_file("r.csv", sample_csv()), o);
  const auto& s = p.report.splits;
  EXPECT_EQ(s["seed"], 7);
  EXPECT_EQ(s["rare_classes_policy"], "drop");
  EXPECT_EQ(s["rare_classes"], nlohmann::json::array({"rare"}));
  EXPECT_EQ(s["train"]["rows"].get<std::size_t>() + s["test"]["rows"].get<std::size_t>(), 30u);
  EXPECT_EQ(s["dropped"]["rows"], 1);
  EXPECT_FALSE(s.contains("val"));
  EXPECT_FALSE(p.has_val);
  EXPECT_EQ(s["test"]["class_counts"]["a"].get<int>() + s["train"]["class_counts"]["a"].get<int>(), 20);
}

TEST(PrepareData, SummaryTableListsReasonsAndClassCounts) {
  PrepareOptions o;
  o.split.rare_classes = kiln::data::RareClassPolicy::kTrainOnly;
  const PreparedData p = kiln::data::prepare_data(write_file("t.csv", sample_csv()), o);
  const std::string t = kiln::data::summary_table(p, o);
  EXPECT_NE(t.find("rows read      32\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  missing_text              1\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("missing_image"), std::string::npos) << t;
  EXPECT_NE(t.find("rare classes   1 with one row, kept in train only\n"), std::string::npos) << t;
  EXPECT_NE(t.find("class    before     after     train      test\n"), std::string::npos) << t;
  EXPECT_NE(t.find("a            20        20        16         4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("total        32        31        25         6\n"), std::string::npos) << t;
}

TEST(PrepareData, ImageColumnsTravelWithTheirRows) {
  PrepareOptions o;
  o.load.text_col = "";
  o.load.image_col = "path";
  o.split.test_size = 0.5;
  const PreparedData p = kiln::data::prepare_data(
      write_file("img.csv", "path,label\n1.png,a\n2.png,a\n3.png,b\n4.png,b\n,b\n"), o);
  EXPECT_EQ(p.report.dropped.at("missing_image"), 1);
  const auto train = p.train();
  ASSERT_EQ(train.images.size(), 2u);
  EXPECT_EQ(train.base_dir, p.dataset.base_dir);
  for (std::size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(train.labels[i], train.images[i].path < "3" ? "a" : "b");
  }
  const std::string t = kiln::data::summary_table(p, o);
  EXPECT_NE(t.find("  missing_image             1\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("text length"), std::string::npos) << t;
}

TEST(PrepareData, BadSplitOptionsNameTheOption) {
  PrepareOptions o;
  o.split.test_size = 0.7;
  o.split.val_size = 0.3;
  EXPECT_NE(prepare_error(write_file("b.csv", sample_csv()), o)
                .find("--test-size 0.7 and --val-size 0.3 add up to 1 or more"),
            std::string::npos);
}

TEST(PrepareData, RareClassesUnderErrorNameTheClass) {
  const std::string msg = prepare_error(write_file("e.csv", sample_csv()), PrepareOptions{});
  EXPECT_NE(msg.find("'rare'"), std::string::npos) << msg;
}

TEST(PrepareData, RareClassPolicyNamesRoundTrip) {
  for (const char* name : {"error", "drop", "train-only"}) {
    EXPECT_STREQ(kiln::data::rare_class_policy_name(kiln::data::parse_rare_class_policy(name)), name);
  }
}
