#include "kiln/serve/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "kiln/core/error.h"

namespace kiln::serve {

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string escape(const std::string& s, bool help) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && !help) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

uint64_t AtomicDouble::to_bits(double v) noexcept {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

double AtomicDouble::from_bits(uint64_t b) noexcept {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

void AtomicDouble::add(double d) noexcept {
  uint64_t old = bits_.load(std::memory_order_relaxed);
  while (!bits_.compare_exchange_weak(old, to_bits(from_bits(old) + d), std::memory_order_relaxed)) {
  }
}

void CounterChild::inc(double d) {
  if (!(d >= 0)) {
    throw ConfigError("a counter can only increase; got an increment of " + format_value(d) + " (use a gauge)");
  }
  value_.add(d);
}

HistogramChild::HistogramChild(const std::vector<double>& upper_bounds)
    : bounds_(upper_bounds), buckets_(new std::atomic<uint64_t>[upper_bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void HistogramChild::observe(double v) noexcept {
  if (std::isnan(v)) return;
  std::size_t i = 0;
  // Few buckets (tens): a linear scan beats a binary search's branches.
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.add(v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> HistogramChild::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

template <typename Child>
Family<Child>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                      std::function<std::unique_ptr<Child>()> make_child)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      make_child_(std::move(make_child)) {
  // A metric without labels has its one series from the start (it shows as 0 before first use).
  if (label_names_.empty()) children_.emplace(std::vector<std::string>{}, make_child_());
}

template <typename Child>
Child& Family<Child>::labels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    std::string names;
    for (const auto& n : label_names_) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("metric " + name_ + " takes " + std::to_string(label_names_.size()) + " label value(s) (" +
                      (names.empty() ? "none" : names) + "), got " + std::to_string(values.size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(values);
  if (it == children_.end()) it = children_.emplace(values, make_child_()).first;
  return *it->second;
}

template <typename Child>
void Family<Child>::remove(const std::vector<std::string>& values) {
  std::lock_guard<std::mutex> lock(mu_);
  children_.erase(values);
}

template <typename Child>
void Family<Child>::for_each(const std::function<void(const std::vector<std::string>&, const Child&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) fn(values, *child);
}

template class Family<CounterChild>;
template class Family<GaugeChild>;
template class Family<HistogramChild>;

std::vector<double> latency_buckets() {
  return {0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> probability_buckets() {
  return {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0};
}

std::vector<double> power_of_two_buckets(double max) {
  std::vector<double> out;
  for (double b = 1; b <= max; b *= 2) out.push_back(b);
  if (out.empty() || out.back() < max) out.push_back(max);
  return out;
}

namespace {

bool valid_name(const std::string& s, bool label) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!(alpha || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// Label names joined with values: {a="x",b="y"}; `extra` (e.g. le="0.5") goes last.
std::string label_text(const std::vector<std::string>& names, const std::vector<std::string>& values,
                       const std::string& extra = "") {
  if (names.empty() && extra.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i] + "=\"" + escape(values[i]) + "\"";
  }
  if (!extra.empty()) out += (names.empty() ? "" : ",") + extra;
  return out + "}";
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + escape(help, /*help=*/true) + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void MetricsRegistry::claim(const std::string& name, const std::vector<std::string>& label_names, bool histogram) {
  if (!valid_name(name, false)) {
    throw ConfigError("metric name '" + name + "' is not a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  for (const auto& l : label_names) {
    if (!valid_name(l, true) || l.rfind("__", 0) == 0 || (histogram && l == "le")) {
      throw ConfigError("metric " + name + ": label name '" + l +
                        "' is not allowed (it must match [a-zA-Z_][a-zA-Z0-9_]*, must not start with '__'" +
                        (histogram ? ", and 'le' is reserved for histogram buckets)" : ")"));
    }
  }
  for (const auto& n : names_) {
    if (n == name) throw ConfigError("metric " + name + " is registered twice");
  }
  names_.push_back(name);
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  claim(name, label_names, false);
  counters_.emplace_back(name, help, std::move(label_names), [] { return std::make_unique<CounterChild>(); });
  order_.push_back({'c', counters_.size() - 1});
  return counters_.back();
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  claim(name, label_names, false);
  gauges_.emplace_back(name, help, std::move(label_names), [] { return std::make_unique<GaugeChild>(); });
  order_.push_back({'g', gauges_.size() - 1});
  return gauges_.back();
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names, std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (upper_bounds.empty()) throw ConfigError("histogram " + name + " needs at least one bucket upper bound");
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1]))) {
      throw ConfigError("histogram " + name + ": bucket upper bounds must be finite and strictly increasing; got " +
                        format_value(upper_bounds[i]) + " at position " + std::to_string(i) +
                        " (+Inf is added by itself)");
    }
  }
  claim(name, label_names, true);
  bounds_.push_back(std::move(upper_bounds));
  const std::vector<double>& bounds = bounds_.back();
  histograms_.emplace_back(name, help, std::move(label_names),
                           [&bounds] { return std::make_unique<HistogramChild>(bounds); });
  order_.push_back({'h', histograms_.size() - 1});
  return histograms_.back();
}

void MetricsRegistry::on_collect(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(fn));
}

std::string MetricsRegistry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  for (const auto& fn : collectors) fn();

  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out.reserve(4096);
  for (const auto& e : order_) {
    if (e.kind == 'c') {
      const auto& f = counters_[e.index];
      header(out, f.name(), f.help(), "counter");
      f.for_each([&](const std::vector<std::string>& values, const CounterChild& c) {
        out += f.name() + label_text(f.label_names(), values) + " " + format_value(c.value()) + "\n";
      });
    } else if (e.kind == 'g') {
      const auto& f = gauges_[e.index];
      header(out, f.name(), f.help(), "gauge");
      f.for_each([&](const std::vector<std::string>& values, const GaugeChild& g) {
        out += f.name() + label_text(f.label_names(), values) + " " + format_value(g.value()) + "\n";
      });
    } else {
      const auto& f = histograms_[e.index];
      const auto& bounds = bounds_[e.index];
      header(out, f.name(), f.help(), "histogram");
      f.for_each([&](const std::vector<std::string>& values, const HistogramChild& h) {
        const auto counts = h.cumulative_counts();
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          const std::string le = "le=\"" + (i < bounds.size() ? format_value(bounds[i]) : std::string("+Inf")) + "\"";
          out += f.name() + "_bucket" + label_text(f.label_names(), values, le) + " " + std::to_string(counts[i]) + "\n";
        }
        const std::string labels = label_text(f.label_names(), values);
        out += f.name() + "_sum" + labels + " " + format_value(h.sum()) + "\n";
        out += f.name() + "_count" + labels + " " + std::to_string(counts.back()) + "\n";
      });
    }
  }
  return out;
}

}  // namespace kiln::serve
