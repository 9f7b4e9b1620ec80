// kiln optimize ARTIFACT --out DIR: int8 variant of an artifact, gated on held-out macro-F1, with a
// before/after table. Flags, files and exit codes only; the algorithms are in kiln::optimize.
#include <sys/utsname.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kiln/artifact/predictor.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/data/dataset.h"
#include "kiln/data/reader.h"
#include "kiln/optimize/benchmark.h"
#include "kiln/optimize/optimize.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct OptimizeFlags {
  std::string artifact, out, int8 = "dynamic", calibration, calibrator = "entropy", val, json_out, keep_fp32;
  std::string format = "auto", text_col = "text", label_col = "label";
  int64_t calibration_size = 512;
  double percentile = 99.99, max_drop = 1.0, bench_seconds = 1.0;
  bool bf16 = false, force = false, no_bench = false;
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

std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "unknown";
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << l[0] << " " << l[1] << " " << l[2];
  return s.str();
}

std::string ratio(double after, double before) {
  if (before <= 0) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << after / before << "x";
  return s.str();
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

void print_table(const optimize::Measurement& a, const optimize::Measurement& b, const optimize::AccuracyGate* gate) {
  std::printf("%-28s %14s %14s %9s\n", "", a.variant.c_str(), b.variant.c_str(), "after/before");
  const auto row = [](const char* name, const std::string& x, const std::string& y, const std::string& r) {
    std::printf("%-28s %14s %14s %9s\n", name, x.c_str(), y.c_str(), r.c_str());
  };
  row(("throughput (ex/s, batch " + std::to_string(a.batch_size) + ")").c_str(), fixed(a.examples_per_second, 1),
      fixed(b.examples_per_second, 1), ratio(b.examples_per_second, a.examples_per_second));
  row("latency batch 1 P50 (ms)", fixed(a.latency_p50_ms, 3), fixed(b.latency_p50_ms, 3), ratio(b.latency_p50_ms, a.latency_p50_ms));
  row("latency batch 1 P99 (ms)", fixed(a.latency_p99_ms, 3), fixed(b.latency_p99_ms, 3), ratio(b.latency_p99_ms, a.latency_p99_ms));
  row("weights (bytes)", std::to_string(a.weight_bytes), std::to_string(b.weight_bytes),
      ratio(static_cast<double>(b.weight_bytes), static_cast<double>(a.weight_bytes)));
  row("RSS after (MiB)", fixed(a.rss_mib, 1), fixed(b.rss_mib, 1), ratio(b.rss_mib, a.rss_mib));
  row("peak RSS so far (MiB)", fixed(a.peak_rss_mib, 1), fixed(b.peak_rss_mib, 1), ratio(b.peak_rss_mib, a.peak_rss_mib));
  if (gate) {
    row("macro-F1 (held-out)", fixed(gate->fp32.macro_f1, 4), fixed(gate->optimized.macro_f1, 4), "");
    row("accuracy (held-out)", fixed(gate->fp32.accuracy, 4), fixed(gate->optimized.accuracy, 4), "");
  }
}

}  // namespace

void add_optimize(CLI::App& app) {
  auto f = std::make_shared<OptimizeFlags>();
  auto* cmd = app.add_subcommand("optimize", ml_verb_description("optimize"));
  cmd->add_option("artifact", f->artifact, "Artifact directory (OUT/model of kiln train/run; the run directory OUT works too)")
      ->required();
  cmd->add_option("--out", f->out, "Where to write the optimized artifact (a new directory)")->required();
  cmd->add_option("--int8", f->int8, "int8 activations: dynamic (per batch) | static (calibrated per tensor)")
      ->capture_default_str();
  cmd->add_option("--calibration", f->calibration, "Texts for static calibration (lines, CSV/TSV/JSONL/JSON with --text-col)");
  cmd->add_option("--calibrator", f->calibrator, "Static range calibrator: entropy (TensorRT's KL) | percentile | minmax")
      ->capture_default_str();
  cmd->add_option("--calibration-size", f->calibration_size, "Calibration examples used (the first N)")->capture_default_str();
  cmd->add_option("--percentile", f->percentile, "The percentile calibrator's p")->capture_default_str();
  cmd->add_option("--keep-fp32", f->keep_fp32, "Modules kept in fp32, comma-separated (e.g. classifier,output)");
  cmd->add_option("--val", f->val, "Labelled file for the accuracy gate (default: the artifact's held-out sample)");
  cmd->add_option("--max-drop", f->max_drop, "Largest macro-F1 drop allowed, in points")->capture_default_str();
  cmd->add_flag("--force", f->force, "Write the artifact even when the accuracy gate fails or cannot run");
  cmd->add_flag("--bf16", f->bf16, "bf16 weights and activations: not available in this Kiln yet (refused with a message)");
  cmd->add_option("--json", f->json_out, "Also write the report (layers, accuracy, before/after table) as JSON here");
  cmd->add_option("--bench-seconds", f->bench_seconds, "Seconds per timing measurement")->capture_default_str();
  cmd->add_flag("--no-bench", f->no_bench, "Skip the before/after timing table");
  cmd->add_option("--format", f->format, "Format of --calibration/--val files (auto|csv|tsv|jsonl|json)")->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column of --calibration/--val files")->capture_default_str();
  cmd->add_option("--label-col", f->label_col, "Label column of the --val file")->capture_default_str();
  cmd->callback([f]() {
    if (f->bf16) {
      throw ConfigError("--bf16 is not available in this Kiln yet (no bf16 kernels for this CPU build); use --int8");
    }
    optimize::OptimizeOptions o;
    o.int8 = optimize::parse_int8_mode(f->int8);
    o.calibrator = optimize::parse_calibrator(f->calibrator);
    o.calibration_size = f->calibration_size;
    o.percentile = f->percentile;
    o.max_drop = f->max_drop;
    o.keep_fp32 = split_list(f->keep_fp32);
    optimize::validate(o);
    if (o.int8 == optimize::Int8Mode::kDynamic && !f->calibration.empty()) {
      throw ConfigError("--calibration is for --int8 static (dynamic int8 needs no calibration); drop it or add --int8 static");
    }
    if (o.int8 == optimize::Int8Mode::kStatic && f->calibration.empty()) {
      throw ConfigError("--int8 static needs --calibration FILE: texts like the training data (the first " +
                        std::to_string(o.calibration_size) + " are used)");
    }
    const std::string dir = artifact_arg(f->artifact);
    artifact::PredictorOptions po;
    po.variant = "fp32";
    artifact::Predictor fp32(dir, po);

    data::Examples calibration;
    if (!f->calibration.empty()) {
      data::ReaderOptions ro;
      ro.format = data::parse_format(f->format);
      calibration.texts = data::read_column(f->calibration, ro, f->text_col);
    }
    data::Dataset val;
    std::string val_name;
    if (!f->val.empty()) {
      data::LoadOptions lo;
      lo.reader.format = data::parse_format(f->format);
      lo.text_col = f->text_col;
      lo.label_col = f->label_col;
      data::DataReport report;
      val = data::load_labeled(f->val, lo, &report);
      val_name = f->val;
    } else {
      val = artifact::load_heldout(dir);
      val_name = dir + "/heldout.jsonl";
    }

    auto art = artifact::load_artifact(dir);
    const auto variant = optimize::quantize(art, calibration.size() ? &calibration : nullptr, o);
    int quantized = 0;
    std::string kept;
    for (const auto& l : variant.layers) {
      if (l.op == "fp32") {
        kept += (kept.empty() ? "" : ", ") + l.module + " (" + l.reason + ")";
      } else {
        ++quantized;
      }
    }
    std::cerr << "int8 " << optimize::int8_mode_name(o.int8) << " on engine " << variant.variant.details.value("engine", "")
              << ": " << quantized << " Linear layers quantized; fp32 layers: " << (kept.empty() ? "none" : kept) << "\n";

    nlohmann::json report = {{"artifact", dir}, {"out", f->out}, {"variant", variant.name},
                             {"details", variant.variant.details}};
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : variant.layers) {
      nlohmann::json j = {{"module", l.module}, {"op", l.op}};
      if (!l.reason.empty()) j["reason"] = l.reason;
      if (o.int8 == optimize::Int8Mode::kStatic && l.op != "fp32") {
        j["input_threshold"] = l.input_threshold;
        j["output_threshold"] = l.output_threshold;
      }
      layers.push_back(j);
    }
    report["layers"] = layers;

    std::unique_ptr<optimize::AccuracyGate> gate;
    nlohmann::json accuracy;
    if (val.size() == 0) {
      if (!f->force) {
        throw ConfigError(dir + " keeps no held-out sample, so the accuracy gate cannot run: pass --val FILE (labelled) "
                                "or --force to write the optimized artifact unchecked");
      }
      core::warn("accuracy not checked (no held-out sample and no --val); written because of --force");
      accuracy = {{"checked", false}};
    } else {
      gate = std::make_unique<optimize::AccuracyGate>(optimize::check_accuracy(fp32, variant, val, val_name, o));
      accuracy = {{"checked", true},
                  {"data", val_name},
                  {"examples", gate->fp32.examples},
                  {"fp32_macro_f1", gate->fp32.macro_f1},
                  {"optimized_macro_f1", gate->optimized.macro_f1},
                  {"fp32_accuracy", gate->fp32.accuracy},
                  {"optimized_accuracy", gate->optimized.accuracy},
                  {"drop_points", gate->drop_points},
                  {"max_drop_points", gate->max_drop},
                  {"passed", gate->passed}};
      std::cerr << "accuracy gate on " << val_name << " (" << gate->fp32.examples << " examples): macro-F1 fp32 "
                << fixed(gate->fp32.macro_f1, 4) << " -> " << variant.name << " " << fixed(gate->optimized.macro_f1, 4)
                << " (drop " << fixed(gate->drop_points, 2) << " points, allowed " << fixed(gate->max_drop, 2) << ")\n";
      if (!gate->passed) {
        std::string worst;
        for (std::size_t i = 0; i < std::min<std::size_t>(5, gate->worst_layers.size()); ++i) {
          worst += (i ? ", " : "") + gate->worst_layers[i].first + " (" + fixed(gate->worst_layers[i].second, 2) + ")";
        }
        nlohmann::json w = nlohmann::json::array();
        for (const auto& [m, d] : gate->worst_layers) w.push_back({{"module", m}, {"drop_points_alone", d}});
        accuracy["worst_layers"] = w;
        const std::string msg = "the " + variant.name + " model loses " + fixed(gate->drop_points, 2) +
                                " points of macro-F1 on " + val_name + " (allowed: --max-drop " + fixed(gate->max_drop, 2) +
                                "); layers costing the most alone: " + (worst.empty() ? "none" : worst) +
                                "; keep them in fp32 with --keep-fp32, try --int8 dynamic or another --calibrator, or "
                                "pass --force";
        if (!f->force) throw DataError(msg + "; nothing was written");
        core::warn(msg + "; written because of --force");
      }
    }
    report["accuracy"] = accuracy;

    if (!f->no_bench) {
      const data::Examples& bench_examples = val.size() ? static_cast<const data::Examples&>(val) : calibration;
      if (bench_examples.size() == 0) {
        core::warn("no held-out, --val or calibration examples to time: the before/after table is skipped");
      } else {
        std::vector<std::size_t> ids;
        for (std::size_t i = 0; i < std::min<std::size_t>(bench_examples.size(), 256); ++i) ids.push_back(i);
        const auto batch = fp32.encode(bench_examples.select(ids));
        optimize::BenchmarkOptions bo;
        bo.min_seconds = f->bench_seconds;
        const auto before = optimize::measure(fp32, batch, bo);
        auto quant_art = artifact::load_artifact(dir);
        artifact::apply_variant(*quant_art.model, variant.name, variant.variant,
                                [&] {
                                  nn::VariantTensors t;
                                  for (const auto& [n, x] : variant.tensors) t[n] = x;
                                  return t;
                                }(),
                                "variant '" + variant.name + "'");
        artifact::Predictor optimized(std::move(quant_art), po);  // po.variant = fp32: kernels already installed
        auto after = optimize::measure(optimized, batch, bo);
        after.variant = variant.name;
        print_table(before, after, gate.get());
        report["benchmark"] = {{"before", optimize::to_json(before)},
                               {"after", optimize::to_json(after)},
                               {"load_average", load_average()},
                               {"threads", at::get_num_threads()}};
      }
    }

    optimize::save_optimized(dir, f->out, variant,
                             {{"accuracy", accuracy}, {"benchmark", report.value("benchmark", nlohmann::json())}});
    std::cout << "optimized artifact written to " << f->out << " (default variant: " << variant.name << ")\n";
    if (!f->json_out.empty()) {
      core::write_file_atomic(f->json_out, report.dump(2) + "\n");
      std::cout << "report written to " << f->json_out << "\n";
    }
  });
}

}  // namespace kiln::cli
