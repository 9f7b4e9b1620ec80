#include "kiln/optimize/flow.h"

#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
#include "kiln/data/reader.h"

namespace kiln::optimize {
namespace {

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string ratio(double after, double before) { return before <= 0 ? "-" : fixed(after / before, 2) + "x"; }

std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "unknown";
  return fixed(l[0], 2) + " " + fixed(l[1], 2) + " " + fixed(l[2], 2);
}

nn::VariantTensors tensors_of(const QuantizedVariant& v) {
  nn::VariantTensors t;
  for (const auto& [n, x] : v.tensors) t[n] = x;
  return t;
}

nlohmann::json gate_json(const AccuracyGate& g, const std::string& val_name) {
  nlohmann::json j = {{"checked", true},
                      {"data", val_name},
                      {"examples", g.fp32.examples},
                      {"fp32_macro_f1", g.fp32.macro_f1},
                      {"optimized_macro_f1", g.optimized.macro_f1},
                      {"fp32_accuracy", g.fp32.accuracy},
                      {"optimized_accuracy", g.optimized.accuracy},
                      {"drop_points", g.drop_points},
                      {"max_drop_points", g.max_drop},
                      {"passed", g.passed}};
  if (!g.passed) {
    nlohmann::json w = nlohmann::json::array();
    for (const auto& [m, d] : g.worst_layers) w.push_back({{"module", m}, {"drop_points_alone", d}});
    j["worst_layers"] = w;
  }
  return j;
}

}  // namespace

bool slower_than(const Measurement& after, const Measurement& before) {
  return after.examples_per_second < 0.95 * before.examples_per_second || after.latency_p50_ms > 1.05 * before.latency_p50_ms;
}

std::string format_table(const Measurement& a, const Measurement& b, const AccuracyGate* gate) {
  std::string out;
  const auto row = [&out](const std::string& name, const std::string& x, const std::string& y, const std::string& r) {
    char line[160];
    std::snprintf(line, sizeof line, "%-28s %14s %14s %12s\n", name.c_str(), x.c_str(), y.c_str(), r.c_str());
    out += line;
  };
  row("", a.variant, b.variant, "after/before");
  row("throughput (ex/s, batch " + std::to_string(a.batch_size) + ")", fixed(a.examples_per_second, 1),
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
  row("verdict", "", slower_than(b, a) ? "SLOWER" : "faster", slower_than(b, a) ? "than fp32" : "or equal");
  return out;
}

FlowResult run_optimize(const std::string& dir, const std::string& out_dir, const FlowOptions& f) {
  const OptimizeOptions& o = f.optimize;
  validate(o);
  if (f.bench) validate(f.benchmark);
  check_out_dir(dir, out_dir);
  const bool is_static = o.precision == Precision::kInt8 && o.int8 == Int8Mode::kStatic;
  if (!is_static && !f.calibration_file.empty()) {
    throw ConfigError("--calibration is for --int8 static (dynamic int8 and bf16 need no calibration); drop it or add "
                      "--int8 static");
  }
  artifact::PredictorOptions po;
  po.variant = "fp32";
  artifact::Predictor fp32(dir, po);
  const bool images = fp32.manifest().inputs.find(nn::kPixelValues) != nullptr;
  data::Dataset val;
  std::string val_name;
  if (!f.val_file.empty()) {
    if (images) throw ConfigError("--val reads text files; image models are gated on the artifact's held-out sample: drop --val");
    data::LoadOptions lo;
    lo.reader.format = data::parse_format(f.format);
    lo.text_col = f.text_col;
    lo.label_col = f.label_col;
    data::DataReport report;
    val = data::load_labeled(f.val_file, lo, &report);
    val_name = f.val_file;
  } else {
    val = artifact::load_heldout(dir);
    val_name = dir + "/heldout.jsonl";
  }
  FlowResult r;
  data::Examples calibration;
  if (!f.calibration_file.empty()) {
    if (images) {
      throw ConfigError("--calibration reads texts; image models calibrate on the artifact's held-out sample: drop "
                        "--calibration");
    }
    data::ReaderOptions ro;
    ro.format = data::parse_format(f.format);
    calibration.texts = data::read_column(f.calibration_file, ro, f.text_col);
  } else if (is_static && images && val.size() > 0) {
    calibration = val;
    r.notes.push_back("static int8 calibrates on the held-out sample (" + std::to_string(val.size()) + " images)");
  } else if (is_static) {
    throw ConfigError("--int8 static needs --calibration FILE: texts like the training data (the first " +
                      std::to_string(o.calibration_size) + " are used)");
  }

  auto art = artifact::load_artifact(dir);
  r.variant = quantize(art, calibration.size() ? &calibration : nullptr, o);
  const auto& v = r.variant;
  std::map<std::string, int> counts;
  std::string kept;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : v.layers) {
    ++counts[l.op];
    if (!l.reason.empty()) kept += (kept.empty() ? "" : "; ") + l.module + " (" + l.op + ": " + l.reason + ")";
    nlohmann::json j = {{"module", l.module}, {"op", l.op}};
    if (!l.reason.empty()) j["reason"] = l.reason;
    if (l.input_threshold > 0 || l.output_threshold > 0) {
      j["input_threshold"] = l.input_threshold;
      j["output_threshold"] = l.output_threshold;
    }
    layers.push_back(j);
  }
  std::string summary;
  for (const auto& [op, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + op;
  r.notes.push_back("variant '" + v.name + "'" +
                    (v.variant.details.contains("engine") ? " on engine " + v.variant.details["engine"].get<std::string>() : "") +
                    ": " + summary + "; not reduced: " + (kept.empty() ? "none" : kept));
  if (v.variant.details.contains("conv_bn_precision")) {
    r.notes.push_back("convolutions: BatchNorm folded, ReLU fused, in " + v.variant.details["conv_bn_precision"].get<std::string>());
  }
  r.report = {{"artifact", dir}, {"out", out_dir}, {"variant", v.name}, {"details", v.variant.details}, {"layers", layers}};

  nlohmann::json accuracy;
  if (val.size() == 0) {
    if (!f.force) {
      throw ConfigError(dir + " keeps no held-out sample, so the accuracy gate cannot run: pass --val FILE (labelled) "
                              "or --force to write the optimized artifact unchecked");
    }
    r.warnings.push_back("accuracy not checked (no held-out sample and no --val); written because of --force");
    accuracy = {{"checked", false}};
  } else {
    r.gate = std::make_unique<AccuracyGate>(check_accuracy(fp32, v, val, val_name, o));
    const auto& g = *r.gate;
    accuracy = gate_json(g, val_name);
    r.notes.push_back("accuracy gate on " + val_name + " (" + std::to_string(g.fp32.examples) + " examples): macro-F1 fp32 " +
                      fixed(g.fp32.macro_f1, 4) + " -> " + v.name + " " + fixed(g.optimized.macro_f1, 4) + " (drop " +
                      fixed(g.drop_points, 2) + " points, allowed " + fixed(g.max_drop, 2) + ")");
    if (!g.passed) {
      std::string worst;
      for (std::size_t i = 0; i < std::min<std::size_t>(5, g.worst_layers.size()); ++i) {
        worst += (i ? ", " : "") + g.worst_layers[i].first + " (" + fixed(g.worst_layers[i].second, 2) + ")";
      }
      const std::string msg = "the " + v.name + " model loses " + fixed(g.drop_points, 2) + " points of macro-F1 on " +
                              val_name + " (allowed: --max-drop " + fixed(g.max_drop, 2) +
                              "); layers costing the most alone: " + (worst.empty() ? "none" : worst) +
                              "; keep them in fp32 with --keep-fp32, try --int8 dynamic or another --calibrator, or "
                              "pass --force";
      if (!f.force) throw DataError(msg + "; nothing was written");
      r.warnings.push_back(msg + "; written because of --force");
    }
  }
  r.report["accuracy"] = accuracy;

  const data::Examples& bench_examples = val.size() ? static_cast<const data::Examples&>(val) : calibration;
  if (f.bench && bench_examples.size() == 0) {
    r.warnings.push_back("no held-out, --val or calibration examples to time: the before/after table is skipped");
  } else if (f.bench) {
    std::vector<std::size_t> ids;
    for (std::size_t i = 0; i < std::min<std::size_t>(bench_examples.size(), 256); ++i) ids.push_back(i);
    const auto batch = fp32.encode(bench_examples.select(ids));
    r.before = std::make_unique<Measurement>(measure(fp32, batch, f.benchmark));
    auto quant_art = artifact::load_artifact(dir);
    artifact::apply_variant(*quant_art.model, v.name, v.variant, tensors_of(v), "variant '" + v.name + "'");
    artifact::Predictor optimized(std::move(quant_art), po);  // po.variant = fp32: kernels already installed
    r.after = std::make_unique<Measurement>(measure(optimized, batch, f.benchmark));
    r.after->variant = v.name;
    const bool slower = slower_than(*r.after, *r.before);
    if (slower) {
      r.warnings.push_back("the " + v.name + " variant is SLOWER than fp32 on this machine (throughput " +
                           ratio(r.after->examples_per_second, r.before->examples_per_second) + ", batch-1 P50 latency " +
                           ratio(r.after->latency_p50_ms, r.before->latency_p50_ms) +
                           "); keep serving fp32 (--variant fp32), or keep the slow layers in fp32 (--keep-fp32, "
                           "--min-int8-weights)");
    }
    r.report["benchmark"] = {{"before", to_json(*r.before)},
                             {"after", to_json(*r.after)},
                             {"slower_than_fp32", slower},
                             {"load_average", load_average()},
                             {"threads", at::get_num_threads()}};
  }
  save_optimized(dir, out_dir, v, {{"accuracy", accuracy}, {"benchmark", r.report.value("benchmark", nlohmann::json())}});
  return r;
}

}  // namespace kiln::optimize
