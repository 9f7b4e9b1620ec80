// TrainFlags::resolve: the flags given, applied to --config / the --model preset / the recommended
// config as one patch (the same validation as YAML). Registration and model selection:
// train_flags.cpp.
#include "train_flags.h"

#include "kiln/core/error.h"

namespace kiln::cli {

train::RunConfig TrainFlags::resolve() const {
  train::RunConfig c;
  std::string where = "flags";
  if (!config_path.empty()) {
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
  // The bert flags fill the wordpiece featurizer and the bert family's params.
  const bool bert = c.model.family == "bert";
  for (const char* flag : {"--vocab", "--init", "--preset", "--max-length", "--vocab-size", "--long-text", "--stride"}) {
    if (given(flag) && !bert) {
      throw ConfigError(std::string(flag) + " applies to --model bert, but this run trains '" + c.model.family +
                        "'; drop " + flag + " or use --model bert");
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
    if (c.featurizer.value("type", std::string()) != "wordpiece") {
      throw ConfigError("--vocab, --max-length, --vocab-size, --long-text and --stride set the wordpiece featurizer, but "
                        "this run's featurizer is '" +
                        c.featurizer.value("type", std::string()) + "'");
    }
    if (given("--vocab")) patch["featurizer"]["vocab"] = vocab;
    if (given("--max-length")) patch["featurizer"]["max_length"] = max_length;
    if (given("--vocab-size")) patch["featurizer"]["vocab_size"] = vocab_size;
    if (given("--long-text")) patch["featurizer"]["long_text"] = long_text;
    if (given("--stride")) patch["featurizer"]["stride"] = stride;
  }
  if (given("--preset")) patch["model"]["params"]["preset"] = preset;
  train::apply_config(patch, c, where);
  if (given("--init")) c.init = init;
  train::validate(c.trainer);
  return c;
}

}  // namespace kiln::cli
