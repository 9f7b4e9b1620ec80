#include "kiln/report/figures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "kiln/core/error.h"

namespace kiln::report {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Downsample, KeepsEverySeriesThatFits) {
  std::vector<double> y = {3, 1, 2};
  EXPECT_EQ(downsample_min_max(y, 10), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(Downsample, KeepsEndsAndEachBucketsExtremes) {
  // 10002 points: a sine with one spike up and one down in the middle; 100 points allowed.
  std::vector<double> y(10002);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = std::sin(static_cast<double>(i) / 50.0);
  y[5003] = 9;
  y[7001] = -9;
  const auto keep = downsample_min_max(y, 100);
  ASSERT_LE(keep.size(), 100u);
  EXPECT_EQ(keep.front(), 0u);
  EXPECT_EQ(keep.back(), y.size() - 1);
  EXPECT_TRUE(std::is_sorted(keep.begin(), keep.end()));
  EXPECT_TRUE(std::adjacent_find(keep.begin(), keep.end()) == keep.end()) << "an index kept twice";
  EXPECT_NE(std::find(keep.begin(), keep.end(), 5003u), keep.end()) << "the spike up was dropped";
  EXPECT_NE(std::find(keep.begin(), keep.end(), 7001u), keep.end()) << "the spike down was dropped";
  // Every bucket of the interior keeps its own minimum and maximum.
  const std::size_t buckets = (100 - 2) / 2, n = y.size();
  for (std::size_t b = 0; b < buckets; ++b) {
    const std::size_t lo = 1 + b * (n - 2) / buckets, hi = 1 + (b + 1) * (n - 2) / buckets;
    const auto mx = std::max_element(y.begin() + lo, y.begin() + hi) - y.begin();
    const auto mn = std::min_element(y.begin() + lo, y.begin() + hi) - y.begin();
    EXPECT_NE(std::find(keep.begin(), keep.end(), static_cast<std::size_t>(mx)), keep.end()) << "bucket " << b;
    EXPECT_NE(std::find(keep.begin(), keep.end(), static_cast<std::size_t>(mn)), keep.end()) << "bucket " << b;
  }
}

TEST(Downsample, AllNaNBucketKeepsAGap) {
  std::vector<double> y(1000, 1.0);
  for (std::size_t i = 400; i < 600; ++i) y[i] = std::numeric_limits<double>::quiet_NaN();
  const auto keep = downsample_min_max(y, 20);
  bool gap = false;
  for (auto i : keep) gap = gap || std::isnan(y[i]);
  EXPECT_TRUE(gap) << "a run of missing values must stay a gap in the line";
}

TEST(XYChart, EmbedsTheDrawnPointsAndEscapesText) {
  XYChart c;
  c.id = "loss";
  c.title = "Loss <per> step & \"more\"";
  c.x = Axis("step");
  c.y = Axis("loss", "nats");
  Series s("train <loss>");
  for (int i = 0; i < 5000; ++i) {
    s.x.push_back(i);
    s.y.push_back(1.0 / (1 + i));
  }
  c.series = {s};
  c.max_points = 200;
  c.markers = {Marker(10, "best <epoch>")};
  const Figure f = xy_chart(c);
  EXPECT_EQ(f.kind, "line");
  EXPECT_TRUE(contains(f.body, "<title>Loss &lt;per&gt; step &amp; &quot;more&quot;</title>")) << f.body.substr(0, 300);
  EXPECT_TRUE(contains(f.body, "train &lt;loss&gt;"));
  EXPECT_TRUE(contains(f.body, "best &lt;epoch&gt;"));
  EXPECT_FALSE(contains(f.body, "<loss>"));
  EXPECT_TRUE(contains(f.body, ">loss (nats)</text>")) << "y axis label with its unit";
  const auto& d = f.data["series"][0];
  EXPECT_EQ(d["points"], 5000);
  EXPECT_LE(d["x"].size(), 200u);
  EXPECT_EQ(d["x"].size(), d["drawn"].get<std::size_t>());
  EXPECT_EQ(d["y"][0], 1.0);
  EXPECT_EQ(d["x"].back(), 4999.0);
  EXPECT_EQ(f.data["markers"][0]["x"], 10.0);
}

TEST(XYChart, SecondAxisAndLengthMismatch) {
  XYChart c;
  c.id = "two";
  c.title = "two axes";
  c.y2 = Axis("learning rate");
  Series a("a"), b("b");
  a.x = b.x = {1, 2, 3};
  a.y = {1, 2, 3};
  b.y = {0.1, 0.01, 0.001};
  b.right_axis = true;
  c.series = {a, b};
  const Figure f = xy_chart(c);
  EXPECT_EQ(f.data["y2_label"], "learning rate");
  EXPECT_EQ(f.data["series"][1]["axis"], "right");
  c.series[0].y.pop_back();
  EXPECT_EQ(message_of([&] { (void)xy_chart(c); }),
            "figure two: series 'a' has 3 x values and 2 y values; give one y per x");
}

TEST(BarChart, SortsDescendingAndMarksHighlights) {
  BarChart c;
  c.id = "f1";
  c.title = "F1";
  c.value = Axis("F1", "", false, 0.0, 1.0);
  c.bars = {Bar("a", 0.2), Bar("b", 0.9, true), Bar("c", 0.5)};
  c.highlight_legend = "tail";
  const Figure f = bar_chart(c);
  EXPECT_EQ(f.data["labels"], (nlohmann::json{"b", "c", "a"}));
  EXPECT_EQ(f.data["values"], (nlohmann::json{0.9, 0.5, 0.2}));
  EXPECT_EQ(f.data["highlight"], (nlohmann::json{true, false, false}));
  EXPECT_TRUE(contains(f.body, "class=\"bar hi\""));
}

TEST(Histogram, OpenLastBinAndSizeCheck) {
  Histogram h;
  h.id = "len";
  h.title = "length";
  h.edges = {0, 16, 32};
  h.values = {0.5, 0.3, 0.2};
  h.open_last = true;
  const Figure f = histogram(h);
  EXPECT_TRUE(contains(f.body, "≥ 32"));
  h.open_last = false;
  EXPECT_EQ(message_of([&] { (void)histogram(h); }), "figure len: 3 bin edges need 2 values, got 3");
}

TEST(HeatMap, ManyClassesGetReadableLabelsAndShapeIsChecked) {
  HeatMap h;
  h.id = "cm";
  h.title = "confusion";
  h.row_axis = "true class";
  h.col_axis = "predicted class";
  for (int i = 0; i < 45; ++i) h.row_labels.push_back("class-" + std::to_string(i));
  h.col_labels = h.row_labels;
  h.values.assign(45, std::vector<double>(45, 0));
  for (int i = 0; i < 45; ++i) h.values[i][i] = i + 1;
  const Figure f = heat_map(h);
  for (const auto& l : h.row_labels) EXPECT_TRUE(contains(f.body, ">" + l + "</text>")) << l;
  // Each label row is at least 7 px and the font shrinks for small cells.
  EXPECT_TRUE(contains(f.body, "tk small"));
  EXPECT_EQ(f.data["values"][44][44], 45.0);
  h.values[3].pop_back();
  EXPECT_EQ(message_of([&] { (void)heat_map(h); }),
            "figure cm: row 3 ('class-3') has 44 values for 45 column labels");
}

TEST(Reliability, CarriesEceAndBins) {
  ReliabilityDiagram d;
  d.id = "rel";
  d.title = "reliability";
  d.bins = {{0.1, 0.0, 3}, {0.0, 0.0, 0}, {0.9, 0.8, 10}};
  d.ece = 0.0375;
  const Figure f = reliability_diagram(d);
  EXPECT_EQ(f.data["ece"], 0.0375);
  EXPECT_EQ(f.data["bins"].size(), 3u);
  EXPECT_EQ(f.data["bins"][2]["count"], 10);
  EXPECT_TRUE(contains(f.body, "ECE 0.0375"));
}

TEST(Table, EscapesCellsAndChecksWidth) {
  Table t;
  t.id = "t";
  t.title = "table";
  t.header = {"class", "F1"};
  t.numeric = {false, true};
  t.rows = {{"<script>", "0.5"}};
  const Figure f = table(t);
  EXPECT_TRUE(contains(f.body, "<td>&lt;script&gt;</td><td class=\"n\">0.5</td>"));
  t.rows.push_back({"only one"});
  EXPECT_EQ(message_of([&] { (void)table(t); }), "table t: row 1 has 1 cells for 2 columns");
}

TEST(Parallel, AxisLengthsMustMatch) {
  ParallelCoordinates p;
  p.id = "pc";
  p.title = "pc";
  p.color_values = {1, 2};
  p.axes = {ParallelAxis{"lr", {0.1, 0.01}, true, {}}, ParallelAxis{"k", {0}, false, {"a", "b"}}};
  EXPECT_EQ(message_of([&] { (void)parallel_coordinates(p); }), "figure pc: axis 'k' has 1 values for 2 lines");
  p.axes[1].values = {0, 1};
  const Figure f = parallel_coordinates(p);
  EXPECT_EQ(f.data["axes"][1]["categories"], (nlohmann::json{"a", "b"}));
}

TEST(FormatValue, ShortForms) {
  EXPECT_EQ(format_value(0.31119009919029156), "0.3112");
  EXPECT_EQ(format_value(1e-05), "1e-05");
  EXPECT_EQ(format_value(std::nan("")), "n/a");
  EXPECT_EQ(format_value(3044, 10), "3044");
}

}  // namespace
}  // namespace kiln::report
