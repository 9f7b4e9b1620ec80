// TrainFlags::resolve: the flags given, applied to --config / the --model preset / the recommended
// config as one patch (the same validation as YAML). Registration and model selection:
// train_flags.cpp.
#include "train_flags.h"

#include "kiln/core/error.h"
#include "kiln/core/yaml.h"

namespace kiln::cli {

train::RunConfig TrainFlags::resolve() const {
  train::RunConfig c;
  std::string where = "flags";
  if (!config_path.empty() && selection_config(config_path)) {
    // A model selection's config (selected_config.yaml of an ensemble): its data section here, its
    // candidates in selection().
    const nlohmann::json j = core::load_yaml_file(config_path);
    c = train::recommended_config();
    if (j.contains("data")) train::apply_config({{"data", j["data"]}}, c, config_path);
  } else if (!config_path.empty()) {
    c = train::load_run_config(config_path);
    if (!model.empty() && model != c.model.family) {
      throw ConfigError("--model " + model + " conflicts with " + config_path + " (model.family: " + c.model.family +
                        "); drop one of them");
    }
  } else if (!model.empty()) {
    c = train::preset_config(model);
  } else {
    c = train::recommended_config();
  }
  auto given = [&](const char* flag) { return cmd_ && cmd_->count(flag) > 0; };
  nlohmann::json t = nlohmann::json::object();
  if (given("--epochs")) t["epochs"] = epochs;
  if (given("--batch-size")) t["batch_size"] = batch_size;
  if (given("--grad-clip")) t["grad_clip"] = grad_clip;
  if (given("--patience")) t["early_stopping_patience"] = patience;
  if (given("--seed")) t["seed"] = seed;
  if (given("--device")) t["device"] = device;
  if (given("--calibrate")) t["calibrate"] = calibrate;
  if (given("--lr")) t["optimizer"]["lr"] = lr;
  if (given("--weight-decay")) t["optimizer"]["weight_decay"] = weight_decay;
  if (given("--optimizer")) t["optimizer"]["kind"] = optimizer;
  if (given("--schedule")) t["schedule"]["kind"] = schedule;
  if (given("--warmup-ratio")) t["schedule"]["warmup_ratio"] = warmup_ratio;
  if (given("--loss")) t["loss"]["kind"] = loss;
  if (given("--class-weight")) t["loss"]["class_weight"] = class_weight;
  if (given("--focal-gamma")) t["loss"]["focal_gamma"] = focal_gamma;
  if (given("--label-smoothing")) t["loss"]["label_smoothing"] = label_smoothing;
  nlohmann::json patch = nlohmann::json::object();
  if (!t.empty()) patch["train"] = t;
  if (given("--max-features")) {
    if (c.featurizer.value("type", std::string()) != "tfidf") {
      throw ConfigError("--max-features applies to the tfidf featurizer, but this run uses '" +
                        c.featurizer.value("type", std::string()) + "'");
    }
    patch["featurizer"] = {{"max_features", max_features}};
  }
  // --text-encoder bert: the multimodal preset's text featurizer becomes the bert preset's wordpiece.
  if (given("--text-encoder")) {
    if (c.model.family != "multimodal") {
      throw ConfigError("--text-encoder applies to --model multimodal, but this run trains '" + c.model.family +
                        "'; drop --text-encoder or use --model multimodal");
    }
    if (text_encoder == "bert") {
      nlohmann::json list = c.featurizer.is_array() ? c.featurizer : nlohmann::json::array({c.featurizer});
      for (auto& f : list) {
        if (f.value("type", std::string()) != "image") f = train::preset_config("bert").featurizer;
      }
      c.featurizer = list;
    }
    c.model.params["text_encoder"] = text_encoder;
  }
  // The bert flags fill the wordpiece featurizer and the bert family's params (a multimodal model's
  // with a bert text side: its wordpiece featurizer and model.params.bert).
  const bool multimodal_bert = c.model.family == "multimodal" && c.model.params.value("text_encoder", "") == "bert";
  const bool bert = c.model.family == "bert" || multimodal_bert;
  for (const char* flag : {"--vocab", "--init", "--preset", "--max-length", "--vocab-size", "--long-text", "--stride"}) {
    if (given(flag) && !bert) {
      throw ConfigError(std::string(flag) + " applies to --model bert, but this run trains '" + c.model.family +
                        "'" + (c.model.family == "multimodal" ? " with a bag text side" : "") + "; drop " + flag +
                        " or use --model bert (or --model multimodal --text-encoder bert)");
    }
  }
  // Where the wordpiece settings go: the featurizer, or the wordpiece entry of a list.
  nlohmann::json* wordpiece = c.featurizer.is_object() && c.featurizer.value("type", "") == "wordpiece" ? &c.featurizer : nullptr;
  if (c.featurizer.is_array()) {
    for (auto& f : c.featurizer) {
      if (f.value("type", std::string()) == "wordpiece") wordpiece = &f;
    }
  }
  if (given("--init") && given("--preset")) {
    throw ConfigError("--preset " + preset + " conflicts with --init " + init +
                      ": the pretrained directory's config.json fixes the model's size; drop --preset");
  }
  if (given("--init") && given("--vocab")) {
    throw ConfigError("--vocab " + vocab + " conflicts with --init " + init +
                      ": the pretrained directory brings its own vocab.txt, which its embeddings were trained on; "
                      "drop --vocab");
  }
  if (given("--vocab-size") && (given("--vocab") || given("--init"))) {
    throw ConfigError("--vocab-size sizes the vocabulary learnt on the training texts, but --vocab or --init brings one; "
                      "drop --vocab-size");
  }
  if (bert && (given("--vocab") || given("--max-length") || given("--vocab-size") || given("--long-text") ||
               given("--stride"))) {
    if (!wordpiece) {
      throw ConfigError("--vocab, --max-length, --vocab-size, --long-text and --stride set the wordpiece featurizer, but "
                        "this run's featurizer is " + c.featurizer.dump() + "; give it a wordpiece featurizer");
    }
    nlohmann::json w = nlohmann::json::object();
    if (given("--vocab")) w["vocab"] = vocab;
    if (given("--max-length")) w["max_length"] = max_length;
    if (given("--vocab-size")) w["vocab_size"] = vocab_size;
    if (given("--long-text")) w["long_text"] = long_text;
    if (given("--stride")) w["stride"] = stride;
    if (wordpiece == &c.featurizer) patch["featurizer"] = w;
    else wordpiece->merge_patch(w);
  }
  if (given("--preset")) {
    if (multimodal_bert) patch["model"]["params"]["bert"] = {{"preset", preset}};
    else patch["model"]["params"]["preset"] = preset;
  }
  train::apply_config(patch, c, where);
  if (given("--init")) c.init = init;
  train::validate(c.trainer);
  return c;
}

}  // namespace kiln::cli
