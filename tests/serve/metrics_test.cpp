#include "kiln/serve/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/error.h"
#include "lib/require_tools.h"

namespace kiln::serve {
namespace {

template <typename F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(MetricsFormat, ValuesRoundTripShortest) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(0.00025), "0.00025");
  EXPECT_EQ(format_value(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(MetricsFormat, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape("a\\b\"c\nd", /*help=*/true), "a\\\\b\"c\\nd");
}

TEST(MetricsRegistry, RendersCountersGaugesAndHistograms) {
  MetricsRegistry reg;
  auto& req = reg.counter("kiln_requests_total", "HTTP requests by route and code.", {"route", "code"});
  auto& depth = reg.gauge("kiln_queue_depth", "Texts waiting for a batch.");
  auto& lat = reg.histogram("kiln_request_duration_seconds", "Request latency.", {"route"}, {0.01, 0.1, 1});
  req.labels({"/v1/predict", "200"}).inc();
  req.labels({"/v1/predict", "200"}).inc(2);
  req.labels({"/v1/predict", "400"}).inc();
  depth.labels({}).set(7);
  auto& h = lat.labels({"/v1/predict"});
  for (double v : {0.005, 0.01, 0.05, 0.5, 3.0}) h.observe(v);
  EXPECT_EQ(reg.render(),
            "# HELP kiln_requests_total HTTP requests by route and code.\n"
            "# TYPE kiln_requests_total counter\n"
            "kiln_requests_total{route=\"/v1/predict\",code=\"200\"} 3\n"
            "kiln_requests_total{route=\"/v1/predict\",code=\"400\"} 1\n"
            "# HELP kiln_queue_depth Texts waiting for a batch.\n"
            "# TYPE kiln_queue_depth gauge\n"
            "kiln_queue_depth 7\n"
            "# HELP kiln_request_duration_seconds Request latency.\n"
            "# TYPE kiln_request_duration_seconds histogram\n"
            "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.01\"} 2\n"
            "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.1\"} 3\n"
            "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"1\"} 4\n"
            "kiln_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"+Inf\"} 5\n"
            "kiln_request_duration_seconds_sum{route=\"/v1/predict\"} 3.565\n"
            "kiln_request_duration_seconds_count{route=\"/v1/predict\"} 5\n");
}

TEST(MetricsRegistry, UnlabelledSeriesExistBeforeFirstUse) {
  MetricsRegistry reg;
  reg.counter("kiln_texts_total", "Texts classified.");
  reg.histogram("kiln_inference_batch_size", "Texts per batch.", {}, power_of_two_buckets(4));
  EXPECT_NE(reg.render().find("kiln_texts_total 0\n"), std::string::npos);
  EXPECT_NE(reg.render().find("kiln_inference_batch_size_bucket{le=\"4\"} 0\n"), std::string::npos);
  EXPECT_NE(reg.render().find("kiln_inference_batch_size_count 0\n"), std::string::npos);
}

TEST(MetricsRegistry, LabelValuesAreEscaped) {
  MetricsRegistry reg;
  reg.counter("kiln_predictions_total", "Predictions by label.", {"label"}).labels({"say \"hi\"\n"}).inc();
  EXPECT_NE(reg.render().find("kiln_predictions_total{label=\"say \\\"hi\\\"\\n\"} 1\n"), std::string::npos);
}

TEST(MetricsRegistry, RejectsBadDefinitionsWithClearMessages) {
  MetricsRegistry reg;
  EXPECT_EQ(config_error([&] { reg.counter("2bad", "x"); }),
            "metric name '2bad' is not a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  EXPECT_EQ(config_error([&] { reg.histogram("h", "x", {"le"}, {1}); }),
            "metric h: label name 'le' is not allowed (it must match [a-zA-Z_][a-zA-Z0-9_]*, must not start with "
            "'__', and 'le' is reserved for histogram buckets)");
  EXPECT_EQ(config_error([&] { reg.gauge("g", "x", {"__x"}); }),
            "metric g: label name '__x' is not allowed (it must match [a-zA-Z_][a-zA-Z0-9_]*, must not start with "
            "'__')");
  EXPECT_EQ(config_error([&] { reg.histogram("h2", "x", {}, {1, 1}); }),
            "histogram h2: bucket upper bounds must be finite and strictly increasing; got 1 at position 1 (+Inf is "
            "added by itself)");
  reg.counter("c_total", "x", {"a"});
  EXPECT_EQ(config_error([&] { reg.gauge("c_total", "x"); }), "metric c_total is registered twice");
  auto& c = reg.counter("d_total", "x", {"a", "b"});
  EXPECT_EQ(config_error([&] { c.labels({"only-one"}); }), "metric d_total takes 2 label value(s) (a, b), got 1");
  EXPECT_EQ(config_error([&] { c.labels({"x", "y"}).inc(-1); }),
            "a counter can only increase; got an increment of -1 (use a gauge)");
}

TEST(MetricsRegistry, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry reg;
  auto& c = reg.counter("n_total", "x", {"t"});
  auto& h = reg.histogram("v", "x", {}, {0.5});
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        c.labels({std::to_string(t % 2)}).inc();
        h.labels({}).observe(i % 2 ? 1.0 : 0.25);
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(c.labels({"0"}).value() + c.labels({"1"}).value(), 160000.0);
  EXPECT_EQ(h.labels({}).count(), 160000u);
  EXPECT_EQ(h.labels({}).cumulative_counts()[0], 80000u);
  EXPECT_EQ(h.labels({}).sum(), 80000 * 1.0 + 80000 * 0.25);
}

TEST(ProcessMetrics, ReportsThisProcess) {
  MetricsRegistry reg;
  register_process_metrics(reg);
  const std::string text = reg.render();
  auto value = [&](const std::string& name) {
    const auto pos = text.find("\n" + name + " ");
    EXPECT_NE(pos, std::string::npos) << name << " missing in\n" << text;
    return pos == std::string::npos ? -1.0 : std::stod(text.substr(pos + name.size() + 2));
  };
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_GT(value("process_resident_memory_bytes"), 1e5);
  EXPECT_GE(value("process_virtual_memory_bytes"), value("process_resident_memory_bytes"));
  EXPECT_GE(value("process_open_fds"), 3);
  EXPECT_GE(value("process_max_fds"), value("process_open_fds"));
  EXPECT_GE(value("process_threads"), 1);
  EXPECT_GT(value("process_start_time_seconds"), 1.6e9);
  EXPECT_GE(value("process_cpu_seconds_total"), 0);
}

// When Prometheus' promtool is installed (Debian package prometheus), it must accept the exposition.
TEST(MetricsRegistry, PromtoolAcceptsTheExposition) {
  KILN_REQUIRE_TOOL(std::system("command -v promtool >/dev/null 2>&1") == 0, "promtool", "prometheus");
  MetricsRegistry reg;
  register_process_metrics(reg);
  reg.counter("kiln_requests_total", "HTTP requests by route and code.", {"route", "code"})
      .labels({"/v1/predict", "200"})
      .inc();
  reg.histogram("kiln_request_duration_seconds", "Request latency in seconds.", {}, latency_buckets())
      .labels({})
      .observe(0.002);
  reg.histogram("kiln_prediction_confidence", "Top-1 probability of each prediction.", {}, probability_buckets())
      .labels({})
      .observe(0.93);
  const std::string path = ::testing::TempDir() + "/kiln_metrics.txt";
  std::ofstream(path) << reg.render();
  EXPECT_EQ(std::system(("promtool check metrics < " + path).c_str()), 0);
}

}  // namespace
}  // namespace kiln::serve
