#include "kiln/optimize/optimize.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/safetensors.h"
#include "kiln/nn/int8_linear.h"
#include "kiln/train/trainer.h"

namespace fs = std::filesystem;

namespace kiln::optimize {
namespace {

// Records a Linear's input and output ranges while running it in fp32 (static calibration).
class ObserverKernel : public nn::ModuleKernel {
 public:
  explicit ObserverKernel(torch::nn::Linear layer) : layer_(std::move(layer)) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    auto y = layer_->forward(x);
    if (histogram_pass_) {
      input.observe_histogram(x);
      output.observe_histogram(y);
    } else {
      input.observe_max(x);
      output.observe_max(y);
    }
    return y;
  }
  std::string op() const override { return "observer"; }
  void start_histogram_pass() { histogram_pass_ = true; }
  RangeObserver input, output;

 private:
  torch::nn::Linear layer_;
  bool histogram_pass_ = false;
};

core::TensorView view_of(const torch::Tensor& t) {
  core::TensorView v;
  switch (t.scalar_type()) {
    case torch::kInt8: v.dtype = core::DType::kI8; break;
    case torch::kFloat32: v.dtype = core::DType::kF32; break;
    default: throw ArtifactError("variant tensor of unsupported dtype " + std::string(c10::toString(t.scalar_type())));
  }
  v.shape.assign(t.sizes().begin(), t.sizes().end());
  v.data = static_cast<const std::byte*>(t.data_ptr());
  v.nbytes = static_cast<std::size_t>(t.numel()) * t.element_size();
  return v;
}

std::string dtype_label(const torch::Tensor& t) { return t.scalar_type() == torch::kInt8 ? "int8" : "float32"; }

class Int8LinearPass : public OptimizePass {
 public:
  std::string name() const override { return "int8_linear"; }

  void run(nn::Model& model, const std::vector<nn::Batch>& calibration, const OptimizeOptions& options,
           QuantizedVariant& out) override {
    const auto names = model.replaceable_linears();
    const std::set<std::string> keep(options.keep_fp32.begin(), options.keep_fp32.end());
    for (const auto& k : keep) {
      if (std::find(names.begin(), names.end(), k) == names.end()) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        throw ConfigError("--keep-fp32: module '" + k + "' is not a Linear layer of this model (its layers: " +
                          (list.empty() ? std::string("none") : list) + ")");
      }
    }
    std::map<std::string, torch::nn::Linear> linears;
    for (const auto& item : model.named_modules("", false)) {
      if (auto* l = item.value()->as<torch::nn::Linear>()) {
        linears.emplace(item.key(), torch::nn::Linear(std::dynamic_pointer_cast<torch::nn::LinearImpl>(item.value())));
        (void)l;
      }
    }
    const bool is_static = options.int8 == Int8Mode::kStatic;
    std::map<std::string, std::shared_ptr<ObserverKernel>> observers;
    if (is_static) {
      for (const auto& n : names) {
        if (keep.count(n)) continue;
        auto obs = std::make_shared<ObserverKernel>(linears.at(n));
        observers[n] = obs;
        model.set_kernel(n, obs);
      }
      torch::InferenceMode guard;
      const bool need_hist = options.calibrator != CalibratorKind::kMinMax;
      for (int pass = 0; pass < (need_hist ? 2 : 1); ++pass) {
        if (pass == 1) {
          for (auto& [n, o] : observers) o->start_histogram_pass();
        }
        for (const auto& b : calibration) (void)model.forward(b);
      }
      model.clear_kernels();
    }
    const std::string op = is_static ? "linear_int8_static" : "linear_int8_dynamic";
    bool used = false;
    for (const auto& n : names) {
      LayerDecision d;
      d.module = n;
      if (keep.count(n)) {
        d.op = "fp32";
        d.reason = "--keep-fp32";
        out.layers.push_back(d);
        continue;
      }
      auto [wq, ws] = nn::quantize_weight_per_channel(linears.at(n)->weight);
      out.tensors.emplace_back(n + ".weight_int8", wq);
      out.tensors.emplace_back(n + ".weight_scale", ws.to(torch::kFloat32));
      if (is_static) {
        const auto& o = *observers.at(n);
        d.input_threshold = o.input.threshold(options.calibrator, options.percentile);
        d.output_threshold = o.output.threshold(options.calibrator, options.percentile);
        const auto scale = [](double t) { return torch::full({1}, static_cast<float>(t > 0 ? t / 127.0 : 1.0 / 127.0)); };
        out.tensors.emplace_back(n + ".input_scale", scale(d.input_threshold));
        out.tensors.emplace_back(n + ".output_scale", scale(d.output_threshold));
      }
      d.op = op;
      out.variant.details["modules"][n] = op;
      out.layers.push_back(d);
      used = true;
    }
    if (used && std::find(out.variant.ops.begin(), out.variant.ops.end(), op) == out.variant.ops.end()) {
      out.variant.ops.push_back(op);
    }
  }
};

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
  if (o.variant_name.empty() || o.variant_name == "fp32" ||
      o.variant_name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
    throw ConfigError("optimize.variant_name must be lowercase letters, digits, '_' or '-' and not 'fp32', got '" +
                      o.variant_name + "'");
  }
}

std::unique_ptr<OptimizePass> make_int8_linear_pass() { return std::make_unique<Int8LinearPass>(); }

QuantizedVariant quantize(artifact::Artifact& artifact, const data::Examples* calibration, const OptimizeOptions& options) {
  validate(options);
  if (!artifact.model) throw ConfigError("optimize: the artifact has no model");
  if (nn::select_quantized_engine().empty()) {
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
  QuantizedVariant out;
  out.name = options.variant_name;
  out.variant.file = "variants/" + options.variant_name + ".safetensors";
  artifact.model->clear_kernels();
  artifact.model->eval();
  std::vector<std::unique_ptr<OptimizePass>> passes;
  passes.push_back(make_int8_linear_pass());
  for (auto& p : passes) p->run(*artifact.model, batches, options, out);
  if (out.variant.ops.empty()) {
    throw ConfigError("optimize: no layer of this " + artifact.manifest.model.family +
                      " model can be quantized (int8 covers the Linear layers of mlp and bert" +
                      (options.keep_fp32.empty() ? std::string() : "; --keep-fp32 kept every one") + ")");
  }
  for (const auto& [n, t] : out.tensors) out.variant.dtypes[n] = dtype_label(t);
  auto& d = out.variant.details;
  d["int8"] = int8_mode_name(options.int8);
  d["weights"] = "int8 symmetric, one scale per output channel";
  d["engine"] = nn::select_quantized_engine();
  if (options.int8 == Int8Mode::kStatic) {
    d["calibrator"] = calibrator_name(options.calibrator);
    if (options.calibrator == CalibratorKind::kPercentile) d["percentile"] = options.percentile;
    d["calibration_examples"] = std::min<int64_t>(options.calibration_size, static_cast<int64_t>(calibration->size()));
  }
  nlohmann::json fp32 = nlohmann::json::array();
  for (const auto& l : out.layers) {
    if (l.op == "fp32") fp32.push_back({{"module", l.module}, {"reason", l.reason}});
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

void save_optimized(const std::string& source_dir, const std::string& out_dir, const QuantizedVariant& variant,
                    const nlohmann::json& details) {
  const fs::path src(artifact::locate_artifact(source_dir).dir);
  if (fs::weakly_canonical(src) == fs::weakly_canonical(fs::path(out_dir))) {
    throw ConfigError("--out " + out_dir + " is the input artifact itself; write the optimized artifact to a new directory");
  }
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
