// A whole training run described by data: what to read, how to featurize, which model, how to
// train. YAML configs (configs/*.yaml) and CLI flags fill the same struct.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/nn/model_spec.h"
#include "kiln/train/trainer.h"

namespace kiln::train {

struct DataConfig {
  /// Dataset for `kiln run` (a `kiln data list` name). Default "spamassassin".
  std::string dataset = "spamassassin";
  /// Text column; "" = the rows have no text. Default "text".
  std::string text_col = "text";
  /// Image-path column; "" (default) = the rows have no image. The "cnn" preset reads "image".
  std::string image_col;
  std::string label_col = "label";
  /// Keep only these labels; empty keeps all.
  std::vector<std::string> labels;
  /// Test share (proportion or row count). Default 0.2.
  double test_size = 0.2;
  /// Validation share of the whole, used for early stopping. Default 0.1.
  double val_size = 0.1;
  /// Split seed. Default 42.
  uint64_t seed = 42;
  /// Drop exact duplicate texts before splitting. Default false.
  bool dedupe = false;
  /// Where the rows came from when given as files (`kiln train --train/--val/--test`) rather than
  /// fetched by name: recorded in the artifact's training config, not read from YAML. With a train
  /// file set, `dataset` is empty.
  std::string train_file, val_file, test_file;
};

struct RunConfig {
  DataConfig data;
  /// The preprocessor spec ({"type": "tfidf" | "hashed_ngrams" | any registered type, ...options}).
  nlohmann::json featurizer;
  nn::ModelSpec model;
  /// A pretrained directory the model starts from (YAML `model.init`, `kiln train --init DIR`): the
  /// family reads its size, weights and vocabulary (nn::pretrained_start). Empty: random init.
  /// Default empty.
  std::string init;
  TrainerOptions trainer;
};

/// Kiln's recommended default for text classification (see configs/recommended.yaml): the built-in
/// "linear" preset, whatever is registered under that name later.
[[nodiscard]] RunConfig recommended_config();

/// Adds a named preset (`kiln train --model NAME`, a config's model.family), replacing one of the
/// same name, built-ins included. Built-ins: "linear" (the recommended default), "mlp" (the classic
/// TF-IDF 5000 + MLP recipe with AdamW and warmup + cosine), "embedbag" and "fasttext" (fastText's
/// recipe: hashed words, bigrams and character 3-6-grams, per-example SGD), "logreg" (the linear
/// preset solved exactly by L-BFGS on scikit-learn's LogisticRegression objective), "bert" (the mini
/// BERT preset from random init on WordPiece ids of at most 128 tokens, 3 epochs of AdamW with
/// warmup + cosine). Thread-safe. Throws
/// ConfigError for an empty name.
void register_preset(const std::string& name, RunConfig config);
/// Names of the registered presets, sorted.
[[nodiscard]] std::vector<std::string> preset_names();
/// What preset_config accepts: the registered presets and model families (nn::model_family_names()),
/// sorted, without duplicates.
[[nodiscard]] std::vector<std::string> model_choices();
/// The registered preset `name`; else, for a registered model family without a preset, the
/// recommended config with model.family = name and empty params (the family's defaults). Throws
/// ConfigError for any other name, listing the known families (and presets).
[[nodiscard]] RunConfig preset_config(const std::string& name);

/// Applies a config object ({data, featurizer, model, train}) over `base`. Unknown keys are a
/// ConfigError naming them (`where`: the file, for messages).
void apply_config(const nlohmann::json& j, RunConfig& base, const std::string& where);

/// Reads a YAML config file over the preset its model.family names (or the recommended default).
[[nodiscard]] RunConfig load_run_config(const std::string& path);

[[nodiscard]] nlohmann::json to_json(const RunConfig& config);

}  // namespace kiln::train
