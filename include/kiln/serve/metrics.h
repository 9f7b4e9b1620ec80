// Prometheus metrics for the server, written by hand (Debian packages no Prometheus C++ client):
// counters, gauges and histograms with labels, and their exposition in the text format 0.0.4.
//
//   MetricsRegistry reg;
//   auto& requests = reg.counter("kiln_requests_total", "HTTP requests by route and status code.",
//                                {"route", "code"});
//   requests.labels({"/v1/predict", "200"}).inc();              // hot path: keep the child reference
//   auto& latency = reg.histogram("kiln_request_duration_seconds", "Request latency.", {}, latency_buckets());
//   latency.labels({}).observe(0.0021);
//   std::string body = reg.render();                              // GET /metrics
//
// Thread-safety: every method is safe from many threads. A child (one label set) is created once
// and lives as long as the registry, so callers may keep its reference; inc/set/observe are
// lock-free atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::serve {

/// A float in the exposition format: shortest text that reads back to the same double; "+Inf",
/// "-Inf", "NaN" for the specials.
[[nodiscard]] std::string format_value(double v);

/// `s` escaped for a label value (backslash, double quote and newline) or, with `help` true, for a
/// HELP line (backslash and newline only), as the text format 0.0.4 specifies.
[[nodiscard]] std::string escape(const std::string& s, bool help = false);

/// A double that many threads add to without a lock.
class AtomicDouble {
 public:
  void add(double d) noexcept;
  void set(double v) noexcept { bits_.store(to_bits(v), std::memory_order_relaxed); }
  [[nodiscard]] double get() const noexcept { return from_bits(bits_.load(std::memory_order_relaxed)); }

 private:
  static uint64_t to_bits(double v) noexcept;
  static double from_bits(uint64_t b) noexcept;
  std::atomic<uint64_t> bits_{0};
};

class CounterChild {
 public:
  /// Adds `d` (>= 0; a negative or NaN amount throws ConfigError: counters only go up).
  void inc(double d = 1.0);
  /// Sets the counter to a running total kept elsewhere (the kernel's CPU time of the process).
  /// The caller guarantees it never goes down.
  void mirror(double total) noexcept { value_.set(total); }
  [[nodiscard]] double value() const noexcept { return value_.get(); }

 private:
  AtomicDouble value_;
};

class GaugeChild {
 public:
  void set(double v) noexcept { value_.set(v); }
  void add(double d) noexcept { value_.add(d); }
  [[nodiscard]] double value() const noexcept { return value_.get(); }

 private:
  AtomicDouble value_;
};

class HistogramChild {
 public:
  explicit HistogramChild(const std::vector<double>& upper_bounds);
  /// Counts `v` in the first bucket whose upper bound is >= v (and in +Inf); NaN is ignored.
  void observe(double v) noexcept;
  /// Cumulative counts per bucket, +Inf last.
  [[nodiscard]] std::vector<uint64_t> cumulative_counts() const;
  [[nodiscard]] double sum() const noexcept { return sum_.get(); }
  [[nodiscard]] uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double>& bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket, not cumulative; +Inf last
  AtomicDouble sum_;
  std::atomic<uint64_t> count_{0};
};

/// A metric family: one name, one help text, fixed label names, a child per label-value set.
template <typename Child>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Child>()> make_child);

  /// The child for these label values (created on first use). Throws ConfigError when the number
  /// of values differs from the number of label names.
  Child& labels(const std::vector<std::string>& values);

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& help() const { return help_; }
  [[nodiscard]] const std::vector<std::string>& label_names() const { return label_names_; }
  /// Drops the child of these label values (its series leaves the exposition); nothing when there
  /// is none. Only for children no one holds a reference to (e.g. gauges set at collect time).
  void remove(const std::vector<std::string>& values);
  /// Calls fn(label values, child) for every child, in label-value order.
  void for_each(const std::function<void(const std::vector<std::string>&, const Child&)>& fn) const;

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Child>()> make_child_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_;
};

using Counter = Family<CounterChild>;
using Gauge = Family<GaugeChild>;
using Histogram = Family<HistogramChild>;

/// Buckets for request latency in seconds: 0.25 ms to 10 s.
[[nodiscard]] std::vector<double> latency_buckets();
/// Buckets for probabilities: 0.1 to 1.0 in steps of 0.1 (and 0.05, 0.95, 0.99 for the tails).
[[nodiscard]] std::vector<double> probability_buckets();
/// Buckets 1, 2, 4, ..., 2^k up to `max` (batch sizes).
[[nodiscard]] std::vector<double> power_of_two_buckets(double max);

class MetricsRegistry {
 public:
  /// Each registers a family. Throws ConfigError for a name or label name that is not a valid
  /// Prometheus identifier, a reserved label ("le" on histograms, names starting "__"), a name
  /// registered twice, or histogram bounds that are not strictly increasing finite numbers.
  Counter& counter(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  Gauge& gauge(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<std::string> label_names,
                       std::vector<double> upper_bounds);

  /// Adds a function run at each render() before anything is written (e.g. to refresh gauges that
  /// mirror process state).
  void on_collect(std::function<void()> fn);

  /// Every family in registration order, in the text format 0.0.4 (HELP, TYPE, samples).
  [[nodiscard]] std::string render() const;

 private:
  void claim(const std::string& name, const std::vector<std::string>& label_names, bool histogram);

  mutable std::mutex mu_;
  std::vector<std::string> names_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::deque<std::vector<double>> bounds_;
  struct Entry {
    char kind;  // 'c', 'g', 'h'
    std::size_t index;
  };
  std::vector<Entry> order_;
  std::vector<std::function<void()>> collectors_;
};

/// Registers the standard process metrics (the names Prometheus' client libraries use):
/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_start_time_seconds, and process_threads; values read
/// from /proc/self at each render.
void register_process_metrics(MetricsRegistry& registry);

}  // namespace kiln::serve
