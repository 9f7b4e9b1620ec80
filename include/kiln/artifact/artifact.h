// The model artifact: one directory, the only contract between training and what follows.
//   kiln.json          manifest (format_version, versions, labels, featurizer spec, model spec,
//                      training config, metrics, data profile)
//   model.safetensors  weights, named as the model's named parameters and buffers
//   featurizer.json    the featurizer's fitted state
// Written into a temporary sibling and renamed into place. Loading validates everything and names
// the first problem it finds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/nn/model_spec.h"
#include "kiln/nn/text_classifier.h"
#include "kiln/text/featurizer.h"

namespace kiln::artifact {

/// Format of kiln.json and the files beside it. Bump only with a migration path for the older one.
inline constexpr int kFormatVersion = 1;

struct Manifest {
  int format_version = kFormatVersion;
  std::string kiln_version;
  std::string created_at;  ///< UTC, ISO 8601
  std::string task = "text-classification";
  std::vector<std::string> labels;  ///< class id → label; never reordered
  nlohmann::json featurizer;        ///< featurizer spec (with "type")
  nn::ModelSpec model;              ///< resolved (every default filled in)
  int64_t input_dim = 0;
  nlohmann::json training = nlohmann::json::object();  ///< the training config as run
  nlohmann::json metrics = nlohmann::json::object();   ///< final metrics (test or validation)
  nlohmann::json data_profile = nlohmann::json::object();  ///< see profile.h
};

[[nodiscard]] nlohmann::json to_json(const Manifest& m);
/// Throws ArtifactError naming the field (and `where`, the file) when malformed.
[[nodiscard]] Manifest manifest_from_json(const nlohmann::json& j, const std::string& where);

/// Writes the artifact directory atomically. `model` must match the manifest's spec and sizes.
void save_artifact(const std::string& dir, Manifest manifest, const text::Featurizer& featurizer,
                   nn::TextClassifier& model);

struct Artifact {
  Manifest manifest;
  std::unique_ptr<text::Featurizer> featurizer;
  std::shared_ptr<nn::TextClassifier> model;  ///< in eval() mode, on CPU
};

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

}  // namespace kiln::artifact
