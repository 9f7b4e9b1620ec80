#include "kiln/optimize/benchmark.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::optimize {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double current_rss_mib() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  if (!(f >> pages >> resident)) return 0;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

// A batch of `n` rows of `examples`, cycling through them.
nn::Batch rows(const nn::Batch& examples, int64_t n) {
  std::vector<int64_t> ids(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = i % examples.size();
  return examples.select(ids.data(), n);
}

}  // namespace

void validate(const BenchmarkOptions& o) {
  if (o.batch_size < 1) throw ConfigError("benchmark.batch_size must be >= 1, got " + std::to_string(o.batch_size));
  if (!(o.min_seconds > 0)) throw ConfigError("benchmark.min_seconds must be > 0, got " + std::to_string(o.min_seconds));
  if (o.latency_samples < 1) {
    throw ConfigError("benchmark.latency_samples must be >= 1, got " + std::to_string(o.latency_samples));
  }
}

nlohmann::json to_json(const Measurement& m) {
  return {{"variant", m.variant},
          {"examples_per_second", m.examples_per_second},
          {"batch_size", m.batch_size},
          {"latency_batch1_p50_ms", m.latency_p50_ms},
          {"latency_batch1_p99_ms", m.latency_p99_ms},
          {"weight_bytes", m.weight_bytes},
          {"rss_mib", m.rss_mib},
          {"peak_rss_mib", m.peak_rss_mib}};
}

Measurement measure(const artifact::Predictor& predictor, const nn::Batch& examples, const BenchmarkOptions& options) {
  validate(options);
  if (examples.size() < 1) throw DataError("benchmark: no examples to time");
  Measurement m;
  m.variant = predictor.variant();
  m.batch_size = options.batch_size;
  const nn::Batch batch = rows(examples, options.batch_size);
  (void)predictor.forward(batch);
  int64_t passes = 0;
  const auto t0 = Clock::now();
  do {
    (void)predictor.forward(batch);
    ++passes;
  } while (seconds_since(t0) < options.min_seconds);
  m.examples_per_second = static_cast<double>(passes * options.batch_size) / seconds_since(t0);

  std::vector<nn::Batch> singles;
  for (int64_t i = 0; i < std::min<int64_t>(examples.size(), 64); ++i) singles.push_back(examples.slice(i, 1));
  (void)predictor.forward(singles[0]);
  std::vector<double> ms;
  const auto t1 = Clock::now();
  for (int64_t i = 0; i < options.latency_samples || seconds_since(t1) < options.min_seconds; ++i) {
    const auto s = Clock::now();
    (void)predictor.forward(singles[static_cast<std::size_t>(i) % singles.size()]);
    ms.push_back(seconds_since(s) * 1000.0);
    if (static_cast<int64_t>(ms.size()) >= 100 * options.latency_samples) break;
  }
  std::sort(ms.begin(), ms.end());
  const auto pct = [&](double p) {
    const auto k = static_cast<std::size_t>(std::min<double>(static_cast<double>(ms.size() - 1), p * static_cast<double>(ms.size() - 1) + 0.5));
    return ms[k];
  };
  m.latency_p50_ms = pct(0.50);
  m.latency_p99_ms = pct(0.99);
  std::map<std::string, int64_t> variant_bytes;
  for (const auto& [name, k] : predictor.model()->kernels()) {
    if (k->weight_bytes() >= 0) variant_bytes[name] = k->weight_bytes();
  }
  m.weight_bytes = weight_bytes(*predictor.model(), variant_bytes);
  m.rss_mib = current_rss_mib();
  m.peak_rss_mib = peak_rss_mib();
  return m;
}

int64_t weight_bytes(nn::Model& model, const std::map<std::string, int64_t>& variant_bytes) {
  int64_t total = 0;
  for (const auto& p : model.named_parameters()) {
    const auto& name = p.key();
    bool replaced = false;
    for (const auto& [module, bytes] : variant_bytes) {
      if (name == module + ".weight" || name == module + ".bias") replaced = true;
    }
    if (!replaced) total += p.value().numel() * static_cast<int64_t>(p.value().element_size());
  }
  for (const auto& b : model.named_buffers()) total += b.value().numel() * static_cast<int64_t>(b.value().element_size());
  for (const auto& [module, bytes] : variant_bytes) total += bytes;
  return total;
}

}  // namespace kiln::optimize
