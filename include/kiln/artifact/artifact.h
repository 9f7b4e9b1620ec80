// The model artifact: one directory, the only contract between training and what follows.
//   kiln.json            manifest (format_version 2): versions, task, labels, inputs, preprocessors
//                        (type, options, state files), model spec, training config, metrics, data
//                        profile, variants, held-out sample, lineage
//   model.safetensors    weights, named as the model's named parameters and buffers
//   <preprocessor files> each preprocessor's fitted state (tfidf.json: vocabulary and idf, ...)
//   heldout.jsonl        optional: labelled examples kept out of training (quality gates, drift)
//   variants/<name>.safetensors   optimized weights (written by kiln optimize)
// Written into a temporary sibling and renamed into place. Loading validates everything and names
// the first problem it finds. Format 1 artifacts (featurizer.json, input_dim) load unchanged.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/data/dataset.h"
#include "kiln/nn/input_spec.h"
#include "kiln/nn/model.h"
#include "kiln/nn/model_spec.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::artifact {

/// Format of kiln.json and the files beside it. Bump only with a migration path for the older one.
/// 1: one featurizer (featurizer.json) and input_dim. 2: inputs, preprocessors, variants, held-out.
inline constexpr int kFormatVersion = 2;

/// Tasks an artifact may declare. Persisted: never rename.
[[nodiscard]] const std::vector<std::string>& known_tasks();

struct PreprocessorEntry {
  nlohmann::json spec;                       ///< {"type": ..., ...options}
  std::map<std::string, std::string> files;  ///< state-file role → file name in the artifact
};

/// Optimized weights stored beside the fp32 ones: a named set of tensors with their own dtypes.
struct Variant {
  std::string file;                            ///< relative path, variants/<name>.safetensors
  std::vector<std::string> ops;                ///< kernels the variant needs (e.g. "quantized_linear_int8")
  std::map<std::string, std::string> dtypes;   ///< tensor name → dtype ("int8", "float32", ...)
  nlohmann::json details = nlohmann::json::object();  ///< calibration, accuracy gate, ...
};

/// The held-out sample's place in the artifact.
struct HeldOutInfo {
  std::string file;        ///< "heldout.jsonl"; empty = the artifact has none
  int64_t examples = 0;
  std::string source;      ///< where it came from ("validation split")
};

struct Manifest {
  int format_version = kFormatVersion;
  std::string kiln_version;
  std::string created_at;  ///< UTC, ISO 8601
  std::string task = "text-classification";
  std::vector<std::string> labels;  ///< class id → label; never reordered
  nn::InputSpec inputs;             ///< the tensors the preprocessors produce and the model reads
  std::vector<PreprocessorEntry> preprocessors;
  nn::ModelSpec model;              ///< resolved (every default filled in)
  nlohmann::json training = nlohmann::json::object();      ///< the training config as run
  nlohmann::json metrics = nlohmann::json::object();       ///< final metrics (test or validation)
  nlohmann::json data_profile = nlohmann::json::object();  ///< see profile.h
  std::map<std::string, Variant> variants;                 ///< written empty by train
  /// The variant predict/evaluate/serve run when no --variant is given (kiln optimize sets it);
  /// empty = the fp32 weights. Persisted as "default_variant", omitted when empty.
  std::string default_variant;
  HeldOutInfo heldout;
  /// {"method": "temperature", "temperature": T, ...fit details} or {"method": "none"}: how the
  /// Predictor turns logits into probabilities (softmax(logits / T)). Format 1 and a missing
  /// section mean none.
  nlohmann::json calibration = {{"method", "none"}};
  /// The temperature the calibration section gives (1 for none).
  [[nodiscard]] double temperature() const;
  nlohmann::json lineage = nlohmann::json::object();       ///< parent artifact, warm starts
};

[[nodiscard]] nlohmann::json to_json(const Manifest& m);
/// Reads format 1 or 2. Throws ArtifactError naming the field (and `where`, the file) when malformed.
[[nodiscard]] Manifest manifest_from_json(const nlohmann::json& j, const std::string& where);

struct Artifact {
  Manifest manifest;
  prep::Preprocessors preprocessors;  ///< fitted, shared with Predictors made from the artifact
  std::shared_ptr<nn::Model> model;  ///< in eval() mode, on CPU
  std::string dir;                   ///< where it was loaded from; empty for one built in memory
};

/// Writes the artifact directory atomically: kiln.json, model.safetensors, the preprocessors' state
/// files and, when `heldout` is given and not empty, heldout.jsonl. Fills the manifest's versions,
/// inputs and preprocessor entries. `model` must match the labels.
void save_artifact(const std::string& dir, Manifest manifest,
                   const prep::Preprocessors& preprocessors, nn::Model& model,
                   const data::Dataset* heldout = nullptr);

/// Where the artifact named by `dir` lives: `dir` itself when it holds kiln.json, else `dir/model` when
/// `dir` is a run directory (the --out of kiln train/run) holding one. `from_run_dir` tells the caller to
/// say so. Throws ArtifactError naming both places and the fix when neither holds kiln.json.
struct ArtifactLocation {
  std::string dir;
  bool from_run_dir = false;
};
[[nodiscard]] ArtifactLocation locate_artifact(const std::string& dir);

/// Loads and validates an artifact directory (or a run directory, through locate_artifact). Throws ArtifactError for a missing, corrupt,
/// truncated, foreign or newer-format artifact, naming the file and the problem.
[[nodiscard]] Artifact load_artifact(const std::string& dir);

/// The held-out sample stored in the artifact at `dir` (empty when it has none). Throws ArtifactError
/// naming the line of a malformed file.
[[nodiscard]] data::Dataset load_heldout(const std::string& dir);

}  // namespace kiln::artifact
