// kiln optimize ARTIFACT --out DIR: int8/bf16/folded variant of an artifact, gated on held-out
// macro-F1, with a before/after table. Flags, files and exit codes only; the flow is kiln::optimize's.
#include <iostream>
#include <sstream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/optimize/flow.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct OptimizeFlags {
  std::string artifact, out, int8 = "dynamic", calibrator = "entropy", json_out, keep_fp32, variant;
  int64_t calibration_size = 512, min_int8_weights = optimize::kMinInt8Weights;
  double percentile = 99.99, max_drop = 1.0, bench_seconds = 1.0;
  bool bf16 = false, no_bench = false;
  optimize::FlowOptions flow;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

void add_optimize(CLI::App& app) {
  auto f = std::make_shared<OptimizeFlags>();
  auto* cmd = app.add_subcommand("optimize", ml_verb_description("optimize"));
  cmd->add_option("artifact", f->artifact, "Artifact directory (OUT/model of kiln train/run; the run directory OUT works too)")
      ->required();
  cmd->add_option("--out", f->out, "Where to write the optimized artifact (a new directory)")->required();
  cmd->add_option("--int8", f->int8, "int8 activations: dynamic (per batch) | static (calibrated per tensor; cnn: int8 "
                                     "convolutions)")
      ->capture_default_str();
  cmd->add_option("--calibration", f->flow.calibration_file,
                  "Texts for static calibration (lines, CSV/TSV/JSONL/JSON with --text-col); image models use the "
                  "held-out sample");
  cmd->add_option("--calibrator", f->calibrator, "Static range calibrator: entropy (TensorRT's KL) | percentile | minmax")
      ->capture_default_str();
  cmd->add_option("--calibration-size", f->calibration_size, "Calibration examples used (the first N)")->capture_default_str();
  cmd->add_option("--percentile", f->percentile, "The percentile calibrator's p")->capture_default_str();
  cmd->add_option("--keep-fp32", f->keep_fp32, "Modules kept in fp32, comma-separated (e.g. classifier,output)");
  cmd->add_option("--min-int8-weights", f->min_int8_weights,
                  "Linear layers with fewer weights stay fp32 under int8 (slower there; 0 = quantize all)")
      ->capture_default_str();
  cmd->add_option("--val", f->flow.val_file, "Labelled file for the accuracy gate (default: the artifact's held-out sample)");
  cmd->add_option("--max-drop", f->max_drop, "Largest macro-F1 drop allowed, in points")->capture_default_str();
  cmd->add_flag("--force", f->flow.force, "Write the artifact even when the accuracy gate fails or cannot run");
  cmd->add_flag("--bf16", f->bf16, "bf16 Linear weights instead of int8 (CPUs with AVX-512 BF16 or AMX; refused elsewhere)");
  cmd->add_option("--variant-name", f->variant, "The variant's name (default: int8, bf16 or fused, by what it holds)");
  cmd->add_option("--json", f->json_out, "Also write the report (layers, accuracy, before/after table) as JSON here");
  cmd->add_option("--bench-seconds", f->bench_seconds, "Seconds per timing measurement")->capture_default_str();
  cmd->add_flag("--no-bench", f->no_bench, "Skip the before/after timing table");
  cmd->add_option("--format", f->flow.format, "Format of --calibration/--val files (auto|csv|tsv|jsonl|json)")
      ->capture_default_str();
  cmd->add_option("--text-col", f->flow.text_col, "Text column of --calibration/--val files")->capture_default_str();
  cmd->add_option("--label-col", f->flow.label_col, "Label column of the --val file")->capture_default_str();
  cmd->callback([f, cmd]() {
    auto& o = f->flow.optimize;
    if (f->bf16 && cmd->count("--int8")) {
      throw ConfigError("--bf16 and --int8 choose two precisions for the same layers: pass one of them");
    }
    if (f->bf16 && cmd->count("--min-int8-weights")) {
      throw ConfigError("--min-int8-weights applies to int8 only; drop it with --bf16 (use --keep-fp32 for bf16)");
    }
    o.precision = f->bf16 ? optimize::Precision::kBf16 : optimize::Precision::kInt8;
    o.int8 = optimize::parse_int8_mode(f->int8);
    o.calibrator = optimize::parse_calibrator(f->calibrator);
    o.calibration_size = f->calibration_size;
    o.percentile = f->percentile;
    o.max_drop = f->max_drop;
    o.min_int8_weights = f->min_int8_weights;
    o.keep_fp32 = split_list(f->keep_fp32);
    o.variant_name = f->variant;
    f->flow.bench = !f->no_bench;
    f->flow.benchmark.min_seconds = f->bench_seconds;
    const auto r = optimize::run_optimize(artifact_arg(f->artifact), f->out, f->flow);
    for (const auto& n : r.notes) std::cerr << n << "\n";
    for (const auto& w : r.warnings) core::warn(w);
    if (r.before && r.after) std::cout << optimize::format_table(*r.before, *r.after, r.gate.get());
    std::cout << "optimized artifact written to " << f->out << " (default variant: " << r.variant.name << ")\n";
    if (!f->json_out.empty()) {
      core::write_file_atomic(f->json_out, r.report.dump(2) + "\n");
      std::cout << "report written to " << f->json_out << "\n";
    }
  });
}

}  // namespace kiln::cli
