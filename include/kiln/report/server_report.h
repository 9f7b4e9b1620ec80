// The served-model page (`kiln report --server URL`): a snapshot of a server's /metrics — model and
// readiness, request counts and the average rate since start, latency percentiles per route, the
// confidence and batch-size histograms, predictions per label, the drift signals against the
// training profile, and every sample as a table. Parsing and drawing only: the CLI fetches the text.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kiln::report {

struct MetricSample {
  std::string name;  ///< the sample's own name (histograms: NAME_bucket, NAME_sum, NAME_count)
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// One metric family: "# TYPE" and "# HELP" lines and its samples, in text order.
struct MetricFamily {
  std::string name, type = "untyped", help;
  std::vector<MetricSample> samples;
};

/// Parses the Prometheus text exposition format (0.0.4): comments, HELP/TYPE lines, samples with
/// escaped label values, +Inf/-Inf/NaN values and optional timestamps. Samples without a TYPE line
/// form untyped families. Throws DataError naming `source`:line and what is wrong.
[[nodiscard]] std::vector<MetricFamily> parse_prometheus_text(const std::string& text, const std::string& source);

/// PromQL's histogram_quantile: the q-quantile (0..1) of cumulative buckets (upper bound `le`,
/// cumulative count), ascending by bound with +Inf last, interpolated linearly inside the bucket
/// (the first bucket from 0 when its bound is positive). NaN without observations; the largest
/// finite bound when the quantile falls in the +Inf bucket.
[[nodiscard]] double histogram_quantile(double q, const std::vector<std::pair<double, double>>& buckets);

struct ServerPageOptions {
  std::string generator = "kiln";  ///< "kiln VERSION", shown in the footer
  std::string source;              ///< where the text came from (a URL or a file)
  /// When the snapshot was taken, Unix seconds: with process_start_time_seconds gives the uptime
  /// and the average request rate. 0 leaves them out.
  double scraped_at = 0;
};

/// The page. Formatting only.
[[nodiscard]] std::string server_page(const std::vector<MetricFamily>& families, const ServerPageOptions& options = {});

}  // namespace kiln::report
