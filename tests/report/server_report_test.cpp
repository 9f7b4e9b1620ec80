#include "kiln/report/server_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "kiln/core/error.h"

namespace kiln::report {
namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kScrape =
    "# HELP kiln_requests_total Requests by route and status code.\n"
    "# TYPE kiln_requests_total counter\n"
    "kiln_requests_total{route=\"/v1/predict\",code=\"200\"} 2e+01\n"
    "kiln_requests_total{route=\"/v1/predict\",code=\"400\"} 3\n"
    "# TYPE kiln_request_duration_seconds histogram\n"
    "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.001\"} 10\n"
    "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.01\"} 18\n"
    "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"+Inf\"} 20\n"
    "kiln_request_duration_seconds_sum{route=\"/v1/predict\"} 0.05\n"
    "kiln_request_duration_seconds_count{route=\"/v1/predict\"} 20\n"
    "kiln_model_info{version=\"v1\",family=\"linear\",artifact=\"/a \\\"b\\\"\\\\c\"} 1 1700000000000\n"
    "\n"
    "# a comment\n"
    "kiln_drift_psi{signal=\"text_length\"} NaN\n";

TEST(PrometheusText, ParsesFamiliesLabelsAndSpecialValues) {
  const auto fs = parse_prometheus_text(kScrape, "scrape");
  ASSERT_EQ(fs.size(), 4u);
  EXPECT_EQ(fs[0].name, "kiln_requests_total");
  EXPECT_EQ(fs[0].type, "counter");
  EXPECT_EQ(fs[0].help, "Requests by route and status code.");
  ASSERT_EQ(fs[0].samples.size(), 2u);
  EXPECT_EQ(fs[0].samples[0].value, 20);
  EXPECT_EQ(fs[0].samples[1].labels.at("code"), "400");
  EXPECT_EQ(fs[1].name, "kiln_request_duration_seconds");
  EXPECT_EQ(fs[1].samples.size(), 5u) << "buckets, sum and count belong to the histogram's family";
  EXPECT_EQ(fs[2].samples[0].labels.at("artifact"), "/a \"b\"\\c") << "escaped label value";
  EXPECT_EQ(fs[2].samples[0].value, 1) << "the timestamp is not the value";
  EXPECT_TRUE(std::isnan(fs[3].samples[0].value));
}

TEST(PrometheusText, NamesTheBadLine) {
  EXPECT_EQ(message_of([] { (void)parse_prometheus_text("a 1\nb{x=\"1} 2\n", "m.txt"); }),
            "m.txt:2: unterminated label value of 'x' in b");
  EXPECT_EQ(message_of([] { (void)parse_prometheus_text("a 1\n\nb twelve\n", "m.txt"); }),
            "m.txt:3: value 'twelve' of b is not a number");
  EXPECT_EQ(message_of([] { (void)parse_prometheus_text("# TYPE a countr\n", "m.txt"); }),
            "m.txt:1: unknown metric type 'countr' for a; expected counter, gauge, histogram, summary or untyped");
  EXPECT_EQ(message_of([] { (void)parse_prometheus_text("{x=\"1\"} 2\n", "m.txt"); }),
            "m.txt:1: expected a metric name, got '{x=\"1\"} 2'");
  EXPECT_EQ(message_of([] { (void)parse_prometheus_text("a{x=1} 2\n", "m.txt"); }),
            "m.txt:1: malformed label in a at column 4; labels are written name=\"value\"");
  EXPECT_EQ(message_of([] { (void)parse_prometheus_text("abc\n", "m.txt"); }), "m.txt:1: sample abc has no value");
}

// Values by hand from PromQL's definition: rank = q * total, linear within the bucket holding it.
TEST(HistogramQuantile, MatchesPromQL) {
  const std::vector<std::pair<double, double>> b = {{0.001, 10}, {0.01, 18}, {std::numeric_limits<double>::infinity(), 20}};
  EXPECT_DOUBLE_EQ(histogram_quantile(0.5, b), 0.001);                            // rank 10: top of bucket 1
  EXPECT_DOUBLE_EQ(histogram_quantile(0.25, b), 0.0005);                          // rank 5 of 10 in [0, 0.001]
  EXPECT_DOUBLE_EQ(histogram_quantile(0.7, b), 0.001 + 0.009 * (14.0 - 10) / 8);  // rank 14
  EXPECT_DOUBLE_EQ(histogram_quantile(0.99, b), 0.01) << "in the +Inf bucket: the largest finite bound";
  EXPECT_TRUE(std::isnan(histogram_quantile(0.5, {{1, 0}, {std::numeric_limits<double>::infinity(), 0}})));
}

TEST(ServerPage, DrawsLatencyWithPercentilesAndListsEverySample) {
  ServerPageOptions o;
  o.source = "scrape";
  const std::string html = server_page(parse_prometheus_text(kScrape, "scrape"), o);
  const std::string open = "<script type=\"application/json\" id=\"kiln-report-data\">";
  const auto a = html.find(open);
  const auto data = nlohmann::json::parse(html.substr(a + open.size(), html.find("</script>", a) - a - open.size()));
  const auto& lat = data["kiln-request-duration-seconds"]["data"];
  EXPECT_EQ(lat["values"], (nlohmann::json{10.0, 8.0, 2.0}));
  EXPECT_DOUBLE_EQ(lat["percentiles"]["p50"].get<double>(), 1.0) << "milliseconds";
  EXPECT_DOUBLE_EQ(lat["percentiles"]["mean"].get<double>(), 2.5);
  EXPECT_EQ(data["samples"]["data"].size(), 9u);
  EXPECT_NE(html.find("/a &quot;b&quot;\\c"), std::string::npos) << "label values escaped";
}

}  // namespace
}  // namespace kiln::report
