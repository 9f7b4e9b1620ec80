// kiln optimize's driver: reads the calibration and validation data, builds the variant, runs the
// accuracy gate, measures before and after, and writes the optimized artifact. Returns what the CLI
// prints; never prints itself.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/optimize/benchmark.h"
#include "kiln/optimize/optimize.h"

namespace kiln::optimize {

struct FlowOptions {
  OptimizeOptions optimize;
  /// Calibration texts for static int8 (lines, CSV/TSV/JSONL/JSON). Empty: none; image models then
  /// calibrate on the artifact's held-out sample.
  std::string calibration_file;
  /// Labelled file for the accuracy gate; empty = the artifact's held-out sample.
  std::string val_file;
  /// Format and columns of the two files.
  std::string format = "auto", text_col = "text", label_col = "label";
  /// Write the artifact even when the gate fails or cannot run. Default false.
  bool force = false;
  /// Time fp32 and the variant (the before/after table). Default true.
  bool bench = true;
  BenchmarkOptions benchmark;
};

struct FlowResult {
  QuantizedVariant variant;
  std::unique_ptr<AccuracyGate> gate;          ///< null when the gate did not run (--force, no data)
  std::unique_ptr<Measurement> before, after;  ///< null without the benchmark
  /// Lines for the user (stderr): what was optimized, which layers stayed fp32 and why, the gate.
  std::vector<std::string> notes;
  /// Warnings (stderr): unchecked accuracy, a variant slower than fp32.
  std::vector<std::string> warnings;
  /// The whole report (layers, accuracy, benchmark, load average) as kiln optimize --json writes it.
  nlohmann::json report;
};

/// Runs the flow on the artifact at `artifact_dir` and writes `out_dir`. Throws ConfigError for
/// bad option combinations (naming the flag and the fix), DataError when the accuracy gate fails
/// without force (naming the drop and the worst layers; nothing is written).
[[nodiscard]] FlowResult run_optimize(const std::string& artifact_dir, const std::string& out_dir, const FlowOptions& options);

/// The before/after table (fixed-width text, one row per measure, ratios after/before, and a last
/// row saying whether the variant is faster or slower than fp32).
[[nodiscard]] std::string format_table(const Measurement& before, const Measurement& after, const AccuracyGate* gate);

/// Whether `after` is slower than `before` (throughput or batch-1 P50 latency worse by more than 5%).
[[nodiscard]] bool slower_than(const Measurement& after, const Measurement& before);

}  // namespace kiln::optimize
