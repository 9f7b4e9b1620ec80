#include "kiln/data/dataset.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"

namespace fs = std::filesystem;
using kiln::data::DataReport;
using kiln::data::Dataset;
using kiln::data::LoadOptions;

namespace {

fs::path temp_dir() {
  static fs::path dir = [] {
    fs::path p = fs::temp_directory_path() / ("kiln_dataset_test_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& content) {
  fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

std::string load_error(const std::string& path, const LoadOptions& opts = {}) {
  try {
    DataReport r;
    (void)kiln::data::load_labeled(path, opts, &r);
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Dataset, DropsMissingEmptyAndWhitespaceOnlyValues) {
  std::string path = write_file("blank.jsonl",
                                "{\"text\": \"good one\", \"label\": \"a\"}\n"
                                "{\"text\": \"\", \"label\": \"a\"}\n"
                                "{\"text\": \" \\t\\n\\u00a0\\u3000\", \"label\": \"b\"}\n"
                                "{\"label\": \"b\"}\n"
                                "{\"text\": \"no label\", \"label\": null}\n"
                                "{\"text\": \"blank label\", \"label\": \"  \"}\n"
                                "{\"text\": \"good two\", \"label\": \"b\"}\n");
  DataReport r;
  Dataset ds = kiln::data::load_labeled(path, {}, &r);
  EXPECT_EQ(ds.texts, (std::vector<std::string>{"good one", "good two"}));
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.rows_read, 7);
  EXPECT_EQ(r.rows_kept, 2);
  EXPECT_EQ(r.dropped.at("missing_text"), 3);
  EXPECT_EQ(r.dropped.at("missing_label"), 2);
  EXPECT_EQ(r.dropped.at("label_not_allowed"), 0);
  EXPECT_EQ(r.dropped.at("duplicate"), 0);
  EXPECT_EQ(r.dropped.at("bad_utf8"), 0);
  EXPECT_EQ(r.class_counts_before, (std::map<std::string, std::int64_t>{{"a", 2}, {"b", 3}}));
  EXPECT_EQ(r.class_counts_after, (std::map<std::string, std::int64_t>{{"a", 1}, {"b", 1}}));
}

TEST(Dataset, FiltersLabelsAndDedupesKeepingTheFirst) {
  std::string path = write_file("filter.csv",
                                "text,label\n"
                                "x,a\ny,b\nx,c\nz,a\nx,b\nw,d\nz,a\n");
  LoadOptions opts;
  opts.allowed_labels = {"a", "b"};
  opts.dedupe = true;
  DataReport r;
  Dataset ds = kiln::data::load_labeled(path, opts, &r);
  EXPECT_EQ(ds.texts, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"a", "b", "a"}));
  EXPECT_EQ(r.dropped.at("label_not_allowed"), 2);
  EXPECT_EQ(r.dropped.at("duplicate"), 2);
  EXPECT_EQ(r.rows_read, 7);
  EXPECT_DOUBLE_EQ(r.imbalance_ratio, 2.0);
}

TEST(Dataset, DedupeHandlesManyRows) {
  std::string content = "text,label\n";
  for (int i = 0; i < 5000; ++i) content += "t" + std::to_string(i % 1000) + ",l\n";
  DataReport r;
  LoadOptions opts;
  opts.dedupe = true;
  Dataset ds = kiln::data::load_labeled(write_file("many.csv", content), opts, &r);
  EXPECT_EQ(ds.size(), 1000u);
  EXPECT_EQ(r.dropped.at("duplicate"), 4000);
}

TEST(Dataset, LengthStatsInCodePointsMatchNumpy) {
  // Lengths 1..10 in code points (é is 2 bytes, 1 code point).
  std::string content = "text,label\n";
  for (int n = 1; n <= 10; ++n) {
    std::string t;
    for (int i = 0; i < n; ++i) t += "\xC3\xA9";
    content += t + ",l" + std::to_string(n % 2) + "\n";
  }
  DataReport r;
  (void)kiln::data::load_labeled(write_file("lengths.csv", content), {}, &r);
  EXPECT_EQ(r.text_length.min, 1);
  EXPECT_EQ(r.text_length.max, 10);
  EXPECT_DOUBLE_EQ(r.text_length.mean, 5.5);
  // numpy.percentile(range(1, 11), [50, 90, 99]) == [5.5, 9.1, 9.91]
  EXPECT_DOUBLE_EQ(r.text_length.p50, 5.5);
  EXPECT_NEAR(r.text_length.p90, 9.1, 1e-12);
  EXPECT_NEAR(r.text_length.p99, 9.91, 1e-12);
  EXPECT_DOUBLE_EQ(r.imbalance_ratio, 1.0);
}

TEST(Dataset, BadUtf8SkippedRowsAreCounted) {
  LoadOptions opts;
  opts.reader.on_bad_utf8 = kiln::data::BadUtf8Policy::kSkip;
  DataReport r;
  Dataset ds = kiln::data::load_labeled(write_file("bad.csv", "text,label\nok,a\nb\xFF" "d,a\n"), opts, &r);
  EXPECT_EQ(ds.size(), 1u);
  EXPECT_EQ(r.rows_read, 2);
  EXPECT_EQ(r.dropped.at("bad_utf8"), 1);
}

TEST(Dataset, ReportToJsonHasEveryField) {
  DataReport r;
  (void)kiln::data::load_labeled(write_file("json.csv", "text,label\nabc,x\nde,y\n,y\n"), {}, &r);
  nlohmann::json j = kiln::data::to_json(r);
  EXPECT_EQ(j["rows_read"], 3);
  EXPECT_EQ(j["rows_kept"], 2);
  EXPECT_EQ(j["dropped"]["missing_text"], 1);
  EXPECT_EQ(j["dropped"].size(), 5u);
  EXPECT_EQ(j["class_counts_before"]["y"], 2);
  EXPECT_EQ(j["class_counts_after"]["y"], 1);
  EXPECT_EQ(j["text_length"]["max"], 3);
  EXPECT_EQ(j["text_length"]["unit"], "code_points");
  EXPECT_TRUE(j.contains("imbalance_ratio"));
  EXPECT_TRUE(j["splits"].is_object());
}

TEST(Dataset, HeaderOnlyIsAnError) {
  std::string msg = load_error(write_file("header_only.csv", "text,label\n"));
  EXPECT_NE(msg.find("header_only.csv: no data rows"), std::string::npos) << msg;
}

TEST(Dataset, EveryRowDroppedNamesTheFilter) {
  LoadOptions opts;
  opts.allowed_labels = {"spam"};
  std::string msg = load_error(write_file("all_filtered.csv", "text,label\na,x\nb,y\n"), opts);
  EXPECT_NE(msg.find("all_filtered.csv: every row was dropped (2 read: label_not_allowed 2)"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("allows only 'spam', which match no label in the data; labels found: 'x', 'y'"),
            std::string::npos)
      << msg;

  msg = load_error(write_file("no_text.csv", "text,label\n,x\n  ,y\n"));
  EXPECT_NE(msg.find("every row was dropped (2 read: missing_text 2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("column 'text' is empty in 2 rows"), std::string::npos) << msg;
}

TEST(Dataset, SameTextAndLabelColumnIsAConfigError) {
  LoadOptions opts;
  opts.label_col = "text";
  EXPECT_THROW((void)kiln::data::load_labeled(write_file("same.csv", "text\na\n"), opts, nullptr), kiln::ConfigError);
}

TEST(Dataset, ToCsvQuotesAndRoundTrips) {
  Dataset ds;
  ds.texts = {"plain", "with, comma", "with \"quote\"", "two\nlines", "cr\rhere"};
  ds.labels = {"a", "b", "c,d", "e", "f"};
  std::string csv = kiln::data::to_csv(ds, {0, 1, 2, 3, 4});
  EXPECT_EQ(csv,
            "text,label\nplain,a\n\"with, comma\",b\n\"with \"\"quote\"\"\",\"c,d\"\n\"two\nlines\",e\n\"cr\rhere\",f\n");
  DataReport r;
  Dataset back = kiln::data::load_labeled(write_file("round.csv", csv), {}, &r);
  EXPECT_EQ(back.texts, ds.texts);
  EXPECT_EQ(back.labels, ds.labels);
  EXPECT_EQ(kiln::data::to_csv(ds, {3}), "text,label\n\"two\nlines\",e\n");
}
