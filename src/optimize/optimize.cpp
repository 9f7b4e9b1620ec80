#include "kiln/optimize/optimize.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"
#include "kiln/nn/bf16_linear.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/train/trainer.h"

namespace fs = std::filesystem;

namespace kiln::optimize {
namespace {

core::TensorView view_of(const torch::Tensor& t) {
  core::TensorView v;
  switch (t.scalar_type()) {
    case torch::kInt8: v.dtype = core::DType::kI8; break;
    case torch::kFloat32: v.dtype = core::DType::kF32; break;
    case torch::kBFloat16: v.dtype = core::DType::kBF16; break;
    default: throw ArtifactError("variant tensor of unsupported dtype " + std::string(c10::toString(t.scalar_type())));
  }
  v.shape.assign(t.sizes().begin(), t.sizes().end());
  v.data = static_cast<const std::byte*>(t.data_ptr());
  v.nbytes = static_cast<std::size_t>(t.numel()) * t.element_size();
  return v;
}

std::string dtype_label(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kInt8: return "int8";
    case torch::kBFloat16: return "bfloat16";
    default: return "float32";
  }
}

nn::VariantTensors tensor_map(const QuantizedVariant& v) {
  nn::VariantTensors m;
  for (const auto& [n, t] : v.tensors) m[n] = t;
  return m;
}

}  // namespace

std::string int8_mode_name(Int8Mode mode) { return mode == Int8Mode::kStatic ? "static" : "dynamic"; }

Int8Mode parse_int8_mode(const std::string& name, const std::string& flag) {
  if (name == "dynamic") return Int8Mode::kDynamic;
  if (name == "static") return Int8Mode::kStatic;
  throw ConfigError(flag + " must be dynamic or static, got '" + name + "'");
}

void validate(const OptimizeOptions& o) {
  if (o.calibration_size < 1) {
    throw ConfigError("optimize.calibration_size (--calibration-size) must be >= 1, got " + std::to_string(o.calibration_size));
  }
  if (!(o.percentile > 0 && o.percentile <= 100)) {
    throw ConfigError("optimize.percentile (--percentile) must be in (0, 100], got " + std::to_string(o.percentile));
  }
  if (!(o.max_drop >= 0)) {
    throw ConfigError("optimize.max_drop (--max-drop) must be >= 0 points of macro-F1, got " + std::to_string(o.max_drop));
  }
  if (o.batch_size < 1) throw ConfigError("optimize.batch_size must be >= 1, got " + std::to_string(o.batch_size));
  if (o.min_int8_weights < 0) {
    throw ConfigError("optimize.min_int8_weights (--min-int8-weights) must be >= 0, got " +
                      std::to_string(o.min_int8_weights));
  }
  if (o.precision == Precision::kBf16 && o.int8 == Int8Mode::kStatic) {
    throw ConfigError("--bf16 and --int8 static are two precisions for the same layers: choose one");
  }
  if (!o.variant_name.empty() && (o.variant_name == "fp32" ||
      o.variant_name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)) {
    throw ConfigError("optimize.variant_name must be lowercase letters, digits, '_' or '-' and not 'fp32', got '" +
                      o.variant_name + "'");
  }
}

void require_bf16(const core::CpuInfo& cpu) {
  if (nn::cpu_has_bf16(cpu)) return;
  throw ConfigError("--bf16 needs a CPU with AVX-512 BF16 or AMX-BF16 instructions (cpuinfo flags avx512_bf16, amx_bf16) "
                    "and this one (" + (cpu.model_name.empty() ? std::string("unknown model") : cpu.model_name) +
                    ") has neither; use --int8 dynamic or --int8 static instead");
}

QuantizedVariant quantize(artifact::Artifact& artifact, const data::Examples* calibration, const OptimizeOptions& options) {
  validate(options);
  if (!artifact.model) throw ConfigError("optimize: the artifact has no model");
  const bool bf16 = options.precision == Precision::kBf16;
  if (bf16) require_bf16(core::cpu_info());
  if (!bf16 && nn::select_quantized_engine().empty()) {
    throw ConfigError("optimize: this LibTorch has no quantized engine (fbgemm, onednn or qnnpack); int8 cannot run here");
  }
  std::vector<nn::Batch> batches;
  if (options.int8 == Int8Mode::kStatic) {
    if (!calibration || calibration->size() == 0) {
      throw ConfigError("--int8 static needs calibration examples: pass --calibration FILE (texts like the training "
                        "data; " + std::to_string(options.calibration_size) + " are used)");
    }
    const std::size_t n = std::min<std::size_t>(calibration->size(), static_cast<std::size_t>(options.calibration_size));
    for (std::size_t start = 0; start < n; start += static_cast<std::size_t>(options.batch_size)) {
      std::vector<std::size_t> ids;
      for (std::size_t i = start; i < std::min(n, start + static_cast<std::size_t>(options.batch_size)); ++i) ids.push_back(i);
      batches.push_back(prep::encode_all(artifact.preprocessors, calibration->select(ids)));
    }
  }
  auto& model = *artifact.model;
  {
    const auto linears = model.replaceable_linears();
    const auto convs = model.replaceable_convs();
    for (const auto& k : options.keep_fp32) {
      if (std::find(linears.begin(), linears.end(), k) != linears.end()) continue;
      if (std::find(convs.begin(), convs.end(), k) != convs.end()) continue;
      std::string list;
      for (const auto& n : linears) list += (list.empty() ? "" : ", ") + n;
      for (const auto& n : convs) list += (list.empty() ? "" : ", ") + n;
      throw ConfigError("--keep-fp32: module '" + k + "' is not a Linear or Conv+BN layer of this model (its layers: " +
                        (list.empty() ? std::string("none") : list) + ")");
    }
  }
  QuantizedVariant out;
  model.clear_kernels();
  model.eval();
  std::vector<std::unique_ptr<OptimizePass>> passes;
  passes.push_back(make_conv_bn_pass());
  passes.push_back(bf16 ? make_bf16_linear_pass() : make_int8_linear_pass());
  for (auto& p : passes) p->run(model, batches, options, out);
  if (out.variant.ops.empty()) {
    std::string why;
    for (const auto& l : out.layers) why += (why.empty() ? "" : "; ") + l.module + ": " + l.reason;
    throw ConfigError("optimize: no layer of this " + artifact.manifest.model.family + " model is left to optimize (" +
                      (why.empty() ? std::string("int8 and bf16 cover the Linear layers of mlp, bert and multimodal, BatchNorm "
                                                 "folding the convolutions of cnn and multimodal")
                                   : why) +
                      "); nothing would be faster than fp32" +
                      (out.layers.empty() ? std::string()
                                          : ": lower --min-int8-weights (0 quantizes every layer) or drop --keep-fp32"));
  }
  bool any_int8 = false;
  for (const auto& op : out.variant.ops) any_int8 = any_int8 || op.find("int8") != std::string::npos;
  out.name = !options.variant_name.empty() ? options.variant_name : bf16 ? "bf16" : any_int8 ? "int8" : "fused";
  out.variant.file = "variants/" + out.name + ".safetensors";
  for (const auto& [n, t] : out.tensors) out.variant.dtypes[n] = dtype_label(t);
  auto& d = out.variant.details;
  d["precision"] = bf16 ? "bf16" : "int8";
  if (bf16) {
    d["weights"] = "bfloat16 (Linear layers and folded convolutions)";
  } else {
    d["int8"] = int8_mode_name(options.int8);
    d["weights"] = "int8 symmetric, one scale per output channel";
    d["engine"] = nn::select_quantized_engine();
    d["min_int8_weights"] = options.min_int8_weights;
  }
  if (!bf16 && options.int8 == Int8Mode::kStatic) {
    d["calibrator"] = calibrator_name(options.calibrator);
    if (options.calibrator == CalibratorKind::kPercentile) d["percentile"] = options.percentile;
    d["calibration_examples"] = std::min<int64_t>(options.calibration_size, static_cast<int64_t>(calibration->size()));
  }
  nlohmann::json fp32 = nlohmann::json::array();
  for (const auto& l : out.layers) {
    if (l.op == "fp32" || (l.op == "conv_bn_fp32" && (bf16 || options.int8 == Int8Mode::kStatic))) {
      fp32.push_back({{"module", l.module}, {"reason", l.reason}});
    }
  }
  d["fp32_layers"] = fp32;
  return out;
}

Score score(const artifact::Predictor& predictor, const data::Dataset& val, const std::string& where) {
  const auto& labels = predictor.labels();
  std::map<std::string, int64_t> id;
  for (std::size_t i = 0; i < labels.size(); ++i) id[labels[i]] = static_cast<int64_t>(i);
  std::vector<std::size_t> rows;
  std::vector<int64_t> y;
  for (std::size_t i = 0; i < val.size(); ++i) {
    const auto it = id.find(val.labels[i]);
    if (it == id.end()) continue;
    rows.push_back(i);
    y.push_back(it->second);
  }
  if (rows.empty()) {
    throw DataError(where + ": no row has a label the model knows (" + std::to_string(labels.size()) +
                    " labels); pass --val with labelled rows of this task");
  }
  const auto probs = predictor.predict_proba(val.select(rows));
  const auto m = train::compute_metrics_from_proba(y, probs, static_cast<int64_t>(labels.size()));
  return {m.macro_f1, m.accuracy, static_cast<int64_t>(rows.size())};
}

AccuracyGate check_accuracy(const artifact::Predictor& predictor, const QuantizedVariant& variant,
                            const data::Dataset& val, const std::string& where, const OptimizeOptions& options) {
  auto& model = *predictor.model();
  const auto tensors = tensor_map(variant);
  AccuracyGate g;
  g.max_drop = options.max_drop;
  model.clear_kernels();
  g.fp32 = score(predictor, val, where);
  artifact::apply_variant(model, variant.name, variant.variant, tensors, "variant '" + variant.name + "'");
  g.optimized = score(predictor, val, where);
  model.clear_kernels();
  g.drop_points = (g.fp32.macro_f1 - g.optimized.macro_f1) * 100.0;
  g.passed = g.drop_points <= options.max_drop + 1e-9;
  if (!g.passed) {
    const auto modules = variant.variant.details.value("modules", nlohmann::json::object());
    int count = 0;
    for (const auto& [module, op] : modules.items()) {
      if (++count > 64) break;
      artifact::Variant one = variant.variant;
      one.details["modules"] = {{module, op}};
      artifact::apply_variant(model, variant.name, one, tensors, "variant '" + variant.name + "'");
      const Score s = score(predictor, val, where);
      model.clear_kernels();
      g.worst_layers.emplace_back(module, (g.fp32.macro_f1 - s.macro_f1) * 100.0);
    }
    std::stable_sort(g.worst_layers.begin(), g.worst_layers.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
  }
  return g;
}

void check_out_dir(const std::string& source_dir, const std::string& out_dir) {
  const fs::path src(artifact::locate_artifact(source_dir).dir);
  if (fs::weakly_canonical(src) == fs::weakly_canonical(fs::path(out_dir))) {
    throw ConfigError("--out " + out_dir + " is the input artifact itself; write the optimized artifact to a new directory");
  }
}

void save_optimized(const std::string& source_dir, const std::string& out_dir, const QuantizedVariant& variant,
                    const nlohmann::json& details) {
  check_out_dir(source_dir, out_dir);
  const fs::path src(artifact::locate_artifact(source_dir).dir);
  const auto manifest_path = src / "kiln.json";
  auto manifest = artifact::manifest_from_json(nlohmann::json::parse(core::read_file(manifest_path)), manifest_path.string());
  core::AtomicDirectory out(out_dir);
  const std::string variant_file = variant.variant.file;
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file()) continue;
    const auto rel = fs::relative(entry.path(), src);
    if (rel == "kiln.json" || rel.generic_string() == variant_file) continue;
    if (rel.has_parent_path()) fs::create_directories(out.path() / rel.parent_path());
    out.write_file(rel, core::read_file(entry.path()));
  }
  fs::create_directories(out.path() / "variants");
  {
    std::vector<torch::Tensor> keep;
    std::vector<std::pair<std::string, core::TensorView>> views;
    for (const auto& [n, t] : variant.tensors) {
      keep.push_back(t.contiguous());
      views.emplace_back(n, view_of(keep.back()));
    }
    core::AtomicFile f(out, variant_file);
    core::write_safetensors(f, views, {{"format", "kiln-variant"}, {"variant", variant.name}});
    f.commit();
  }
  artifact::Variant v = variant.variant;
  for (const auto& [k, val] : details.items()) v.details[k] = val;
  manifest.variants[variant.name] = v;
  manifest.default_variant = variant.name;
  manifest.lineage["optimized_from"] = fs::absolute(src).lexically_normal().string();
  out.write_file("kiln.json", artifact::to_json(manifest).dump(2) + "\n");
  out.commit();
}

}  // namespace kiln::optimize
