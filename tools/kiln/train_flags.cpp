#include "train_flags.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"
#include "kiln/nn/bert.h"
#include "kiln/tune/tune_config.h"

namespace kiln::cli {

void TrainFlags::add_to(CLI::App& cmd) {
  cmd_ = &cmd;
  cmd.add_option("--config", config_path, "Run config (YAML): data, featurizer, model, train");
  // Families and presets come from their registries (a family registered before the CLI is built
  // is listed and accepted too).
  std::string choices;
  for (const auto& n : train::model_choices()) choices += (choices.empty() ? "" : " | ") + n;
  cmd.add_option("--model", model, "Model family or preset: " + choices + " (default: Kiln's recommended model)")
      ->check(CLI::Validator(
          [](std::string& name) -> std::string {
            const auto known = train::model_choices();
            if (std::find(known.begin(), known.end(), name) != known.end()) return {};
            if (name == "ensemble") {
              return "an ensemble is not trained from a preset: kiln train without --model selects among the "
                     "candidates and chooses the ensemble of the two best when it beats them on validation";
            }
            std::string list;
            for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
            return "'" + name + "' is not a registered model family or preset; known: " + list;
          },
          "FAMILY"));
  cmd.add_option("--epochs", epochs, "Passes over the training set")->check(CLI::Range(1, 100000));
  cmd.add_option("--batch-size", batch_size, "Examples per optimizer step")->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd.add_option("--lr", lr, "Base learning rate")->check(CLI::PositiveNumber);
  cmd.add_option("--weight-decay", weight_decay, "Weight decay")->check(CLI::NonNegativeNumber);
  cmd.add_option("--optimizer", optimizer, "adamw | sgd")->check(CLI::IsMember({"adamw", "sgd"}));
  cmd.add_option("--schedule", schedule, "constant | warmup_cosine | linear | step")
      ->check(CLI::IsMember({"constant", "warmup_cosine", "linear", "step"}));
  cmd.add_option("--warmup-ratio", warmup_ratio, "Warmup as a fraction of all steps")->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--loss", loss, "cross_entropy | focal")->check(CLI::IsMember({"cross_entropy", "focal"}));
  cmd.add_option("--class-weight", class_weight, "none | balanced")->check(CLI::IsMember({"none", "balanced"}));
  cmd.add_option("--focal-gamma", focal_gamma, "Focal loss gamma")->check(CLI::NonNegativeNumber);
  cmd.add_option("--label-smoothing", label_smoothing, "Label smoothing in [0, 1)")->check(CLI::Range(0.0, 0.999));
  cmd.add_option("--grad-clip", grad_clip, "Clip gradients to this global norm (0 = off)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--patience", patience, "Early stopping patience in epochs (0 = off)")->check(CLI::Range(0, 100000));
  cmd.add_option("--seed", seed, "Seed for init, shuffling and dropout");
  cmd.add_option("--max-features", max_features, "TF-IDF vocabulary size (0 = all)")->check(CLI::Range(int64_t{0}, int64_t{1} << 31));
  cmd.add_option("--vocab", vocab, "bert: WordPiece vocabulary (vocab.txt; e.g. `kiln data fetch bert-base-uncased-vocab`)");
  cmd.add_option("--init", init,
                 "bert: start from a pretrained Hugging Face-layout directory (config.json, model.safetensors, "
                 "vocab.txt; e.g. `kiln pretrain --out`); the classification head starts new");
  std::string presets;
  for (const auto& n : nn::kBertPresets) presets += (presets.empty() ? "" : " | ") + n;
  cmd.add_option("--preset", preset, "bert: model size, " + presets + " (default mini)")
      ->check(CLI::IsMember(nn::kBertPresets));
  cmd.add_option("--max-length", max_length, "bert: longest input in WordPiece tokens, longer texts truncated (default 128)")
      ->check(CLI::Range(int64_t{3}, int64_t{1} << 20));
  cmd.add_option("--vocab-size", vocab_size,
                 "bert without --vocab/--init: tokens of the WordPiece vocabulary learnt on the training texts (default 8000)")
      ->check(CLI::Range(int64_t{6}, int64_t{1} << 24));
  cmd.add_option("--long-text", long_text,
                 "bert: texts over --max-length: truncate (default) | window (overlapping windows, logits averaged)")
      ->check(CLI::IsMember({"truncate", "window"}));
  cmd.add_option("--stride", stride, "bert with --long-text window: tokens shared by consecutive windows "
                 "(default (max-length - 2) / 4)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--text-encoder", text_encoder,
                 "multimodal: the text side, bag (TF-IDF pooled into one token, default) | bert (a BERT encoder whose "
                 "hidden states attend over the image; the bert flags size it and --init starts it pretrained)")
      ->check(CLI::IsMember({"bag", "bert"}));
  cmd.add_option("--device", device, "cpu | cuda");
  cmd.add_option("--calibrate", calibrate, "Fit temperature scaling on the validation split: temperature | none")
      ->check(CLI::IsMember({"temperature", "none"}));
  cmd.add_option("--budget", budget,
                 "Model selection (the default without --model/--config): work allowed, in passes over the training "
                 "set summed over the candidates (default: every candidate's full epochs)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--max-time", max_time, "Model selection: wall-clock cap (90s, 5m, 1h); cutting by time is reported");
}

nlohmann::json TrainFlags::general_patch() const {
  nlohmann::json t = nlohmann::json::object();
  if (given("--epochs")) t["epochs"] = epochs;
  if (given("--patience")) t["early_stopping_patience"] = patience;
  if (given("--seed")) t["seed"] = seed;
  if (given("--device")) t["device"] = device;
  if (given("--calibrate")) t["calibrate"] = calibrate;
  if (given("--class-weight")) t["loss"]["class_weight"] = class_weight;
  nlohmann::json patch = nlohmann::json::object();
  if (!t.empty()) patch["train"] = t;
  return patch;
}

bool selection_config(const std::string& path) {
  const nlohmann::json j = core::load_yaml_file(path);
  return j.is_object() && j.contains("selection");
}

namespace {

// The selection a selection config describes: {selection: {candidates: [{name, config}], budget,
// keep_at_rungs, ensemble}, data: {...}}.
pipeline::SelectionOptions selection_from_config(const std::string& path) {
  const nlohmann::json j = core::load_yaml_file(path);
  for (const auto& item : j.items()) {
    if (item.key() != "selection" && item.key() != "data") {
      throw ConfigError(path + ": " + item.key() + " does not belong in a model selection's config (it has selection "
                        "and data; a single model's config has featurizer, model and train instead of selection)");
    }
  }
  const nlohmann::json& sel = j["selection"];
  if (!sel.is_object() || !sel.contains("candidates") || !sel["candidates"].is_array() || sel["candidates"].empty()) {
    throw ConfigError(path + ": selection.candidates must be a list of {name, config}");
  }
  pipeline::SelectionOptions o;
  for (std::size_t i = 0; i < sel["candidates"].size(); ++i) {
    const nlohmann::json& c = sel["candidates"][i];
    const std::string where = path + ": selection.candidates[" + std::to_string(i) + "]";
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string() || !c.contains("config") ||
        !c["config"].is_object()) {
      throw ConfigError(where + " must be {name, config}");
    }
    pipeline::Candidate cand;
    cand.name = c["name"].get<std::string>();
    // Over the preset of that name when there is one (as load_run_config reads a model's config).
    const auto known = train::preset_names();
    const bool preset = std::find(known.begin(), known.end(), cand.name) != known.end();
    cand.config = preset ? train::preset_config(cand.name) : train::recommended_config();
    train::apply_config(c["config"], cand.config, where);
    o.candidates.push_back(std::move(cand));
  }
  if (sel.contains("budget")) {
    if (!sel["budget"].is_number()) throw ConfigError(path + ": selection.budget must be a number of passes");
    o.budget = sel["budget"].get<double>();
  } else {
    o.budget = pipeline::default_budget(o.candidates);
  }
  if (sel.contains("keep_at_rungs")) {
    if (!sel["keep_at_rungs"].is_number_integer() || sel["keep_at_rungs"].get<int64_t>() < 1) {
      throw ConfigError(path + ": selection.keep_at_rungs must be a whole number >= 1 (how many of the best candidates at a "
                        "pruning rung always go on), got " + sel["keep_at_rungs"].dump());
    }
    o.keep_at_rungs = static_cast<int>(std::min<int64_t>(sel["keep_at_rungs"].get<int64_t>(), 1 << 20));
  }
  if (sel.contains("ensemble")) {
    const nlohmann::json& e = sel["ensemble"];
    using Policy = pipeline::SelectionOptions::EnsemblePolicy;
    if (e.is_boolean()) o.ensemble = e.get<bool>() ? Policy::kIfBetter : Policy::kNever;
    else if (e == "always") o.ensemble = Policy::kAlways;
    else throw ConfigError(path + ": selection.ensemble must be true (when it wins on validation), false or always, got " + e.dump());
  }
  return o;
}

}  // namespace

std::optional<pipeline::SelectionOptions> TrainFlags::selection() const {
  static const char* const kSpecific[] = {"--batch-size", "--grad-clip",   "--lr",         "--weight-decay",
                                          "--optimizer",  "--schedule",    "--warmup-ratio", "--loss",
                                          "--focal-gamma", "--label-smoothing", "--max-features",
                                          "--vocab", "--init", "--preset", "--max-length", "--vocab-size",
                                          "--long-text", "--stride", "--text-encoder"};
  const bool from_config = !config_path.empty() && selection_config(config_path);
  std::string one_model;
  if (!config_path.empty() && !from_config) one_model = "--config";
  else if (!model.empty()) one_model = "--model";
  for (const char* f : kSpecific) {
    if (one_model.empty() && given(f)) one_model = f;
  }
  if (!one_model.empty()) {
    for (const char* f : {"--budget", "--max-time"}) {
      if (given(f)) {
        throw ConfigError(std::string(f) + " applies to model selection, which " + one_model +
                          " turns off (it trains one model); drop " + f + " or " + one_model);
      }
    }
    return std::nullopt;
  }
  pipeline::SelectionOptions o;
  if (from_config) {
    o = selection_from_config(config_path);
  } else {
    o.candidates = pipeline::default_candidates();
  }
  const auto patch = general_patch();
  for (auto& c : o.candidates) {
    train::apply_config(patch, c.config, "flags");
    train::validate(c.config.trainer);
  }
  if (given("--budget")) o.budget = budget;
  else if (!from_config) o.budget = pipeline::default_budget(o.candidates);
  o.max_seconds = max_time.empty() ? 0 : tune::parse_duration(max_time, "--max-time");
  return o;
}

}  // namespace kiln::cli
