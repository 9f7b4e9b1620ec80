// kiln optimize's algorithms: reduced precision for an artifact's Linear layers (int8 dynamic, int8
// static with calibrated activation ranges, or bf16), BatchNorm folded into the preceding
// convolution with the ReLU fused (fp32, or int8 static), the accuracy gate against the fp32 model,
// and writing the optimized artifact (the fp32 weights plus the variant, which becomes the default).
// Passes are per module type: OptimizePass turns the modules it recognises into variant kernels
// (int8 Linear, bf16 Linear, Conv+BN fold).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/core/cpu.h"
#include "kiln/data/dataset.h"
#include "kiln/optimize/calibrator.h"

namespace kiln::optimize {

/// Persisted in kiln.json (variant details): never rename.
enum class Int8Mode { kDynamic, kStatic };
[[nodiscard]] std::string int8_mode_name(Int8Mode mode);
/// Throws ConfigError naming `flag`, the value and the choices.
[[nodiscard]] Int8Mode parse_int8_mode(const std::string& name, const std::string& flag = "--int8");

/// Persisted in kiln.json (variant details): never rename.
enum class Precision { kInt8, kBf16 };

/// Linear layers with fewer weights (in × out) than this stay fp32 under int8: quantizing and
/// dequantizing their activations costs more than the int8 product saves. Measured with
/// bench/int8_threshold.sh (one Linear, dense input, 2 threads, onednn, this machine's Xeon at load
/// 12-16), int8/fp32 throughput at batch 32: 256x3 0.06x, 256x64 0.38x, 256x256 0.75-0.78x,
/// 512x128 0.83x, 512x256 1.17x, 384x384 1.11x, 512x512 0.91-1.57x, 768x768 2.29x, 1024x1024 2.94x
/// (batch-1 latency favours fp32 up to about 600k weights). The default is the first size where
/// int8 was not slower.
inline constexpr int64_t kMinInt8Weights = 131072;

struct OptimizeOptions {
  /// Reduced precision of the Linear layers: int8 (default) or bf16 (CPUs with AVX-512 BF16/AMX).
  Precision precision = Precision::kInt8;
  /// Linear layers with fewer weights than this stay fp32 under int8, >= 0 (0: quantize every
  /// one). Default kMinInt8Weights.
  int64_t min_int8_weights = kMinInt8Weights;
  /// Activation quantization: per batch (dynamic) or calibrated per tensor (static). Default dynamic.
  Int8Mode int8 = Int8Mode::kDynamic;
  /// Range calibrator of static int8. Default entropy (TensorRT's).
  CalibratorKind calibrator = CalibratorKind::kEntropy;
  /// Calibration examples read (the first N of the calibration set), >= 1. Default 512.
  int64_t calibration_size = 512;
  /// The percentile calibrator's p, in (0, 100]. Default 99.99.
  double percentile = 99.99;
  /// Modules kept in fp32 (names as in model.safetensors without ".weight"). Default none.
  std::vector<std::string> keep_fp32;
  /// Largest macro-F1 drop allowed, in points (0-100 scale), >= 0. Default 1.0.
  double max_drop = 1.0;
  /// Examples per forward pass during calibration and scoring, >= 1. Default 64.
  int64_t batch_size = 64;
  /// The variant's name in kiln.json; empty = by what it holds: "int8" (some int8 kernel), "bf16",
  /// or "fused" (folded fp32 convolutions only). Default empty.
  std::string variant_name;
};
/// Throws ConfigError naming the field, the value and the fix.
void validate(const OptimizeOptions& options);
/// Throws ConfigError naming the missing instructions and the fix (--int8) when `cpu` cannot run
/// bf16 products natively. quantize() calls it with this CPU for --bf16.
void require_bf16(const core::CpuInfo& cpu);

/// One layer's fate.
struct LayerDecision {
  std::string module;
  std::string op;      ///< a variant op ("linear_int8_dynamic", "conv_bn_fp32", ...) | "fp32"
  std::string reason;  ///< why it stayed fp32 ("--keep-fp32", ...); empty when quantized
  double input_threshold = 0;   ///< static: calibrated |x| clip
  double output_threshold = 0;  ///< static: calibrated |y| clip
};

/// The variant as built in memory: its manifest entry, its tensors and the layer report.
struct QuantizedVariant {
  std::string name;
  artifact::Variant variant;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::vector<LayerDecision> layers;
};

/// A per-module-type optimization pass. Thread-compatible.
class OptimizePass {
 public:
  virtual ~OptimizePass() = default;
  /// "int8_linear", ...
  [[nodiscard]] virtual std::string name() const = 0;
  /// Adds its kernels' tensors, ops and layer decisions to `out` for `model` (fp32, eval mode).
  /// `calibration`: encoded calibration batches (static modes), may be empty otherwise.
  virtual void run(nn::Model& model, const std::vector<nn::Batch>& calibration, const OptimizeOptions& options,
                   QuantizedVariant& out) = 0;
};

/// The built-in int8 Linear pass (mlp, bert: every Linear the family routes through run_linear).
[[nodiscard]] std::unique_ptr<OptimizePass> make_int8_linear_pass();
/// The bf16 Linear pass (the same Linears, weights in bf16).
[[nodiscard]] std::unique_ptr<OptimizePass> make_bf16_linear_pass();
/// The Conv+BN pass (cnn): every convolution the family routes through run_conv_bn gets its
/// BatchNorm folded in (fp32), and with --int8 static its weights and activations in int8.
[[nodiscard]] std::unique_ptr<OptimizePass> make_conv_bn_pass();

/// Runs the passes over `artifact`'s model (left with no kernels installed afterwards). Static int8
/// needs `calibration` (>= 1 example; the first calibration_size are used); throws ConfigError
/// otherwise, ConfigError naming an unknown --keep-fp32 module, ConfigError for bf16 on a CPU
/// without bf16 instructions, and ConfigError when no layer is left to optimize.
[[nodiscard]] QuantizedVariant quantize(artifact::Artifact& artifact, const data::Examples* calibration,
                                        const OptimizeOptions& options);

/// Macro-F1 and accuracy (0-1) of a predictor on labelled rows; rows whose label the model does not
/// know are skipped. Throws DataError when none is left.
struct Score {
  double macro_f1 = 0;
  double accuracy = 0;
  int64_t examples = 0;
};
[[nodiscard]] Score score(const artifact::Predictor& predictor, const data::Dataset& val, const std::string& where);

/// The accuracy gate's verdict.
struct AccuracyGate {
  Score fp32, optimized;
  double drop_points = 0;  ///< (fp32 - optimized) macro-F1 × 100
  double max_drop = 0;
  bool passed = true;
  /// When failed: modules whose quantization alone costs the most macro-F1, worst first (points).
  std::vector<std::pair<std::string, double>> worst_layers;
};
/// Scores `predictor`'s model on `val` in fp32 (no kernels) and with `variant`'s kernels installed
/// (built by the same variant ops the loader uses), then leaves the model with no kernels. On a drop
/// beyond options.max_drop, also scores each quantized module alone to name the worst (at most 64).
[[nodiscard]] AccuracyGate check_accuracy(const artifact::Predictor& predictor, const QuantizedVariant& variant,
                                          const data::Dataset& val, const std::string& where,
                                          const OptimizeOptions& options);

/// Throws ConfigError when `out_dir` is the artifact at `source_dir` itself.
void check_out_dir(const std::string& source_dir, const std::string& out_dir);

/// Writes `out_dir` (atomically): every file of the artifact at `source_dir`, the variant's tensors
/// in variants/<name>.safetensors and kiln.json with the variant added and made the default.
/// `details` is merged into the variant's details (accuracy, benchmark). Throws IoError/ArtifactError.
void save_optimized(const std::string& source_dir, const std::string& out_dir, const QuantizedVariant& variant,
                    const nlohmann::json& details = nlohmann::json::object());

}  // namespace kiln::optimize
