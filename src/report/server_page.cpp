// The served-model page and the Prometheus text parser it reads.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

#include "kiln/core/error.h"
#include "kiln/report/figures.h"
#include "kiln/report/page.h"
#include "kiln/report/server_report.h"

namespace kiln::report {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

double parse_value(const std::string& s, bool& ok) {
  ok = true;
  if (s == "+Inf" || s == "Inf") return std::numeric_limits<double>::infinity();
  if (s == "-Inf") return -std::numeric_limits<double>::infinity();
  if (s == "NaN") return kNaN;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  ok = !s.empty() && end == s.c_str() + s.size();
  return v;
}

// The family a sample belongs to: NAME for NAME_bucket/_sum/_count of a histogram or summary.
std::string family_of(const std::string& sample, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count", "_total", "_created"}) {
    const std::string s = suffix;
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      const std::string base = sample.substr(0, sample.size() - s.size());
      const auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary" || s == "_total")) return base;
    }
  }
  return sample;
}

}  // namespace

std::vector<MetricFamily> parse_prometheus_text(const std::string& text, const std::string& source) {
  std::vector<MetricFamily> families;
  std::map<std::string, std::size_t> index;
  std::map<std::string, std::string> types;
  auto family = [&](const std::string& name) -> MetricFamily& {
    const auto it = index.find(name);
    if (it != index.end()) return families[it->second];
    index[name] = families.size();
    families.push_back(MetricFamily{name, "untyped", "", {}});
    return families.back();
  };
  std::size_t pos = 0;
  long long line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = source + ":" + std::to_string(line_no);
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    line = line.substr(first);
    if (line[0] == '#') {
      // "# TYPE name type" / "# HELP name text"; other comments are ignored.
      const auto words_at = line.find_first_not_of(" \t", 1);
      if (words_at == std::string::npos) continue;
      const bool is_type = line.compare(words_at, 5, "TYPE ") == 0, is_help = line.compare(words_at, 5, "HELP ") == 0;
      if (!is_type && !is_help) continue;
      const std::string rest = line.substr(words_at + 5);
      const auto sp = rest.find(' ');
      const std::string name = rest.substr(0, sp);
      const std::string arg = sp == std::string::npos ? "" : rest.substr(sp + 1);
      if (name.empty()) throw DataError(where + ": " + (is_type ? "TYPE" : "HELP") + " line without a metric name");
      if (is_type) {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary", "untyped"};
        if (!kTypes.count(arg)) {
          throw DataError(where + ": unknown metric type '" + arg + "' for " + name +
                          "; expected counter, gauge, histogram, summary or untyped");
        }
        types[name] = arg;
        family(name).type = arg;
      } else {
        family(name).help = arg;
      }
      continue;
    }
    MetricSample s;
    std::size_t i = 0;
    while (i < line.size() && name_char(line[i], i == 0)) ++i;
    if (i == 0) throw DataError(where + ": expected a metric name, got '" + line.substr(0, 40) + "'");
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        const std::size_t k0 = i;
        while (i < line.size() && name_char(line[i], i == k0)) ++i;
        const std::string key = line.substr(k0, i - k0);
        if (key.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          throw DataError(where + ": malformed label in " + s.name + " at column " + std::to_string(i + 1 + first) +
                          "; labels are written name=\"value\"");
        }
        i += 2;
        std::string value;
        bool closed = false;
        while (i < line.size()) {
          const char c = line[i++];
          if (c == '\\' && i < line.size()) {
            const char e = line[i++];
            value += e == 'n' ? '\n' : e;
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value += c;
          }
        }
        if (!closed) throw DataError(where + ": unterminated label value of '" + key + "' in " + s.name);
        s.labels[key] = value;
      }
    }
    const auto v0 = line.find_first_not_of(" \t", i);
    if (v0 == std::string::npos || v0 == i) throw DataError(where + ": sample " + s.name + " has no value");
    const auto v1 = line.find_first_of(" \t", v0);
    bool ok = false;
    const std::string vtext = line.substr(v0, v1 == std::string::npos ? std::string::npos : v1 - v0);
    s.value = parse_value(vtext, ok);
    if (!ok) throw DataError(where + ": value '" + vtext + "' of " + s.name + " is not a number");
    family(family_of(s.name, types)).samples.push_back(std::move(s));
  }
  return families;
}

double histogram_quantile(double q, const std::vector<std::pair<double, double>>& buckets) {
  if (buckets.empty()) return kNaN;
  const double total = buckets.back().second;
  if (!(total > 0)) return kNaN;
  const double rank = q * total;
  double prev_bound = buckets.front().first > 0 ? 0 : buckets.front().first, prev_count = 0;
  for (const auto& [bound, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(bound)) return prev_bound;  // in the open bucket: its lower bound
      if (count == prev_count) return bound;
      return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count);
    }
    prev_bound = bound;
    prev_count = count;
  }
  return prev_bound;
}

namespace {

std::string labels_text(const std::map<std::string, std::string>& labels, const std::set<std::string>& skip = {}) {
  std::string s;
  for (const auto& [k, v] : labels) {
    if (skip.count(k)) continue;
    s += (s.empty() ? "" : ", ") + k + "=" + v;
  }
  return s;
}

const MetricFamily* find(const std::vector<MetricFamily>& fs, const std::string& name) {
  for (const auto& f : fs)
    if (f.name == name) return &f;
  return nullptr;
}

double total(const MetricFamily* f) {
  if (!f) return kNaN;
  double t = 0;
  for (const auto& s : f->samples) t += s.value;
  return t;
}

std::string id_for(const std::string& name) {
  std::string id;
  for (char c : name) id += (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : '-';
  return id;
}

// A histogram family split by its labels other than `le`: one figure per series.
void add_histograms(Page& page, const MetricFamily& f, const std::string& x_label, const std::string& unit,
                    double scale, nlohmann::json& percentiles) {
  std::map<std::string, std::vector<std::pair<double, double>>> series;
  std::map<std::string, double> sums, counts;
  for (const auto& s : f.samples) {
    const std::string key = labels_text(s.labels, {"le"});
    if (s.name == f.name + "_bucket") {
      const auto le = s.labels.find("le");
      if (le == s.labels.end()) continue;
      bool ok = false;
      const double bound = parse_value(le->second, ok);
      if (ok) series[key].emplace_back(bound, s.value);
    } else if (s.name == f.name + "_sum") {
      sums[key] = s.value;
    } else if (s.name == f.name + "_count") {
      counts[key] = s.value;
    }
  }
  int n = 0;
  for (auto& [key, buckets] : series) {
    std::sort(buckets.begin(), buckets.end());
    Histogram h;
    h.id = id_for(f.name) + (series.size() > 1 ? "-" + std::to_string(n) : "");
    ++n;
    std::string help = f.help;
    while (!help.empty() && (help.back() == '.' || help.back() == ' ')) help.pop_back();
    h.title = (help.empty() ? f.name : help) + (key.empty() ? "" : " (" + key + ")");
    h.x = Axis(x_label, unit);
    h.y = Axis("observations");
    double prev = 0;
    h.edges.push_back(buckets.front().first > 0 ? 0 : buckets.front().first * scale);
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      h.values.push_back(buckets[i].second - prev);
      prev = buckets[i].second;
      if (i + 1 < buckets.size()) h.edges.push_back(buckets[i].first * scale);
    }
    h.open_last = std::isinf(buckets.back().first);
    if (!h.open_last) h.edges.push_back(buckets.back().first * scale);
    const double p50 = histogram_quantile(0.5, buckets) * scale, p90 = histogram_quantile(0.9, buckets) * scale,
                 p99 = histogram_quantile(0.99, buckets) * scale;
    const double count = counts.count(key) ? counts[key] : buckets.back().second;
    const double mean = count > 0 && sums.count(key) ? sums[key] / count * scale : kNaN;
    h.note = format_value(count, 12) + " observations; mean " + format_value(mean, 4) + ", p50 " + format_value(p50, 4) +
             ", p90 " + format_value(p90, 4) + ", p99 " + format_value(p99, 4) + (unit.empty() ? "" : " " + unit) +
             " (percentiles interpolated within buckets, as PromQL's histogram_quantile).";
    Figure fig = histogram(h);
    fig.data["percentiles"] = {{"p50", p50}, {"p90", p90}, {"p99", p99}, {"mean", mean}, {"count", count}};
    percentiles[f.name + (key.empty() ? "" : "{" + key + "}")] = fig.data["percentiles"];
    page.add(std::move(fig));
  }
}

}  // namespace

std::string server_page(const std::vector<MetricFamily>& fs, const ServerPageOptions& o) {
  std::string model = "unknown model";
  std::vector<std::pair<std::string, std::string>> kv;
  if (const auto* info = find(fs, "kiln_model_info"); info && !info->samples.empty()) {
    const auto& l = info->samples.front().labels;
    model = (l.count("family") ? l.at("family") + " model " : "model ") + (l.count("version") ? l.at("version") : "");
    for (const auto& [k, v] : l) kv.emplace_back("model " + k, v);
  }
  Page page("Kiln served model: " + model, "snapshot of " + o.source);
  page.section("Summary");
  kv.emplace_back("source", o.source);
  if (const auto* r = find(fs, "kiln_ready")) kv.emplace_back("ready", total(r) == 1 ? "yes" : "no");
  const double requests = total(find(fs, "kiln_requests_total"));
  const double errors = total(find(fs, "kiln_request_errors_total"));
  kv.emplace_back("requests", format_value(requests, 12));
  kv.emplace_back("request errors", format_value(std::isnan(errors) ? 0 : errors, 12));
  kv.emplace_back("texts", format_value(total(find(fs, "kiln_texts_total")), 12));
  const double start = total(find(fs, "process_start_time_seconds"));
  if (o.scraped_at > 0 && std::isfinite(start) && o.scraped_at > start) {
    const double up = o.scraped_at - start;
    kv.emplace_back("uptime", format_value(up, 6) + " s");
    kv.emplace_back("average request rate since start", format_value(requests / up, 4) + " requests/s");
  }
  if (const auto* rss = find(fs, "process_resident_memory_bytes"))
    kv.emplace_back("resident memory", format_value(total(rss) / (1024.0 * 1024.0), 4) + " MiB");
  if (const auto* cpu = find(fs, "process_cpu_seconds_total")) kv.emplace_back("CPU time", format_value(total(cpu), 4) + " s");
  page.key_values(kv);

  nlohmann::json percentiles = nlohmann::json::object();
  page.section("Latency and load");
  if (const auto* lat = find(fs, "kiln_request_duration_seconds")) {
    add_histograms(page, *lat, "request duration", "ms", 1000.0, percentiles);
  } else {
    page.paragraph("No kiln_request_duration_seconds histogram in the snapshot.");
  }
  if (const auto* b = find(fs, "kiln_inference_batch_size")) add_histograms(page, *b, "texts per forward pass", "", 1.0, percentiles);

  page.section("Predictions");
  if (const auto* c = find(fs, "kiln_prediction_confidence")) add_histograms(page, *c, "top-class probability", "", 1.0, percentiles);
  if (const auto* p = find(fs, "kiln_predictions_total"); p && !p->samples.empty()) {
    BarChart b;
    b.id = "predictions-per-label";
    b.title = "Predictions per label";
    b.value = Axis("predictions", "texts");
    for (const auto& s : p->samples) b.bars.push_back(Bar(labels_text(s.labels), s.value));
    page.add(bar_chart(b));
  }

  page.section("Drift");
  {
    Table t;
    t.id = "drift";
    t.title = "Drift signals against the training profile";
    t.header = {"signal", "labels", "value"};
    t.numeric = {false, false, true};
    nlohmann::json d = nlohmann::json::array();
    for (const auto& f : fs) {
      if (f.name.rfind("kiln_drift_", 0) != 0) continue;
      for (const auto& s : f.samples) {
        t.rows.push_back({s.name, labels_text(s.labels), format_value(s.value, 4)});
        d.push_back({{"name", s.name}, {"labels", s.labels}, {"value", s.value}});
      }
    }
    t.data = d;
    t.note = "PSI (population stability index) above 0.2 is commonly read as a large shift; the window is the "
             "most recent texts the server saw.";
    if (t.rows.empty()) page.paragraph("No drift signals in the snapshot (kiln_drift_*).");
    else page.add(table(t));
  }

  page.section("Every sample");
  Table all;
  all.id = "samples";
  all.title = "Every sample of the snapshot";
  all.header = {"metric", "type", "labels", "value"};
  all.numeric = {false, false, false, true};
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& f : fs) {
    for (const auto& s : f.samples) {
      all.rows.push_back({s.name, f.type, labels_text(s.labels), format_value(s.value, 8)});
      samples.push_back({{"name", s.name}, {"type", f.type}, {"labels", s.labels}, {"value", s.value}});
    }
  }
  all.data = samples;
  page.add(table(all));
  page.data("percentiles", percentiles);
  return page.render(o.generator);
}

}  // namespace kiln::report
