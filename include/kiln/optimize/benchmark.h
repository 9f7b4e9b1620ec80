// Before/after measurements of kiln optimize: throughput, batch-1 latency, weight bytes and memory
// of a Predictor on encoded examples. Wall-clock numbers: meaningful on an idle machine only (the
// report records the load average beside them).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/nn/batch.h"

namespace kiln::optimize {

struct BenchmarkOptions {
  /// Examples per forward pass of the throughput measurement, >= 1. Default 32.
  int64_t batch_size = 32;
  /// Seconds each measurement runs at least (after one warm-up pass), > 0. Default 1.
  double min_seconds = 1.0;
  /// Batch-1 forward passes timed for the latency percentiles, >= 1. Default 200.
  int64_t latency_samples = 200;
};
/// Throws ConfigError naming the field.
void validate(const BenchmarkOptions& options);

struct Measurement {
  std::string variant;
  double examples_per_second = 0;  ///< forward passes of batch_size examples (encoded once, before timing)
  int64_t batch_size = 0;
  double latency_p50_ms = 0;       ///< batch 1
  double latency_p99_ms = 0;
  int64_t weight_bytes = 0;        ///< bytes of the weights the variant runs (fp32 tensors kept + its int8 ones)
  double rss_mib = 0;              ///< resident memory of the process after the measurement
  double peak_rss_mib = 0;         ///< the process's peak resident memory so far (getrusage)
};
[[nodiscard]] nlohmann::json to_json(const Measurement& m);

/// Times `predictor.forward` on `examples` (its first rows, cycled to fill each batch).
[[nodiscard]] Measurement measure(const artifact::Predictor& predictor, const nn::Batch& examples,
                                  const BenchmarkOptions& options);

/// Bytes of the model's weights as the variant runs them: every parameter and buffer, with each
/// module that runs a kernel counted at its variant tensors' size (`variant_bytes`, by module)
/// instead of its fp32 weight.
[[nodiscard]] int64_t weight_bytes(nn::Model& model, const std::map<std::string, int64_t>& variant_bytes = {});

}  // namespace kiln::optimize
