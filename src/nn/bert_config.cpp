// BertConfig (config.json), size presets, BertOptions and the "bert" family's params.
#include <algorithm>
#include <cmath>
#include <string>

#include "kiln/core/error.h"
#include "kiln/nn/bert.h"
#include "params.h"

namespace kiln::nn {

namespace {

[[noreturn]] void config_fail(const std::string& where, const std::string& field, const std::string& rule,
                              const nlohmann::json& got) {
  throw ConfigError(where + field + " must be " + rule + ", got " + got.dump());
}

int64_t json_integer(const nlohmann::json& j, const std::string& where, const std::string& field, int64_t fallback) {
  const auto it = j.find(field);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  config_fail(where, field, "an integer", *it);
}

double json_number(const nlohmann::json& j, const std::string& where, const std::string& field, double fallback) {
  const auto it = j.find(field);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number()) config_fail(where, field, "a number", *it);
  return it->get<double>();
}

}  // namespace

void BertConfig::validate(const std::string& where) const {
  auto at_least = [&](const char* field, int64_t value, int64_t min) {
    if (value < min) config_fail(where, field, ">= " + std::to_string(min), value);
  };
  at_least("vocab_size", vocab_size, 1);
  at_least("hidden_size", hidden_size, 1);
  at_least("num_hidden_layers", num_hidden_layers, 0);
  at_least("num_attention_heads", num_attention_heads, 1);
  at_least("intermediate_size", intermediate_size, 1);
  at_least("max_position_embeddings", max_position_embeddings, 1);
  at_least("type_vocab_size", type_vocab_size, 1);
  if (hidden_size % num_attention_heads != 0) {
    throw ConfigError(where + "hidden_size (" + std::to_string(hidden_size) +
                      ") must be a multiple of num_attention_heads (" + std::to_string(num_attention_heads) + ")");
  }
  if (std::find(kBertActivations.begin(), kBertActivations.end(), hidden_act) == kBertActivations.end()) {
    std::string msg = where + "hidden_act must be one of " + join_names(kBertActivations, true) + ", got \"" +
                      hidden_act + "\"";
    const std::string hint = closest_name(hidden_act, kBertActivations);
    if (!hint.empty()) msg += " (did you mean \"" + hint + "\"?)";
    throw ConfigError(msg);
  }
  if (!(layer_norm_eps > 0) || !std::isfinite(layer_norm_eps)) config_fail(where, "layer_norm_eps", "> 0", layer_norm_eps);
  if (!(hidden_dropout_prob >= 0 && hidden_dropout_prob < 1)) {
    config_fail(where, "hidden_dropout_prob", "in [0, 1)", hidden_dropout_prob);
  }
  if (!(attention_probs_dropout_prob >= 0 && attention_probs_dropout_prob < 1)) {
    config_fail(where, "attention_probs_dropout_prob", "in [0, 1)", attention_probs_dropout_prob);
  }
  if (!(initializer_range > 0) || !std::isfinite(initializer_range)) {
    config_fail(where, "initializer_range", "> 0", initializer_range);
  }
  if (pad_token_id < 0 || pad_token_id >= vocab_size) {
    config_fail(where, "pad_token_id", "in [0, vocab_size " + std::to_string(vocab_size) + ")", pad_token_id);
  }
}

BertConfig BertConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw ConfigError(where + "config must be a JSON object, got " + j.dump());
  const auto mt = j.find("model_type");
  if (mt != j.end() && mt->is_string() && mt->get<std::string>() != "bert") {
    throw ConfigError(where + "model_type is \"" + mt->get<std::string>() +
                      "\" but the bert family reads BERT checkpoints (model_type \"bert\")");
  }
  BertConfig c;
  c.vocab_size = json_integer(j, where, "vocab_size", c.vocab_size);
  c.hidden_size = json_integer(j, where, "hidden_size", c.hidden_size);
  c.num_hidden_layers = json_integer(j, where, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = json_integer(j, where, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = json_integer(j, where, "intermediate_size", c.intermediate_size);
  if (const auto it = j.find("hidden_act"); it != j.end()) {
    if (!it->is_string()) config_fail(where, "hidden_act", "one of " + join_names(kBertActivations, true), *it);
    c.hidden_act = it->get<std::string>();
  }
  c.max_position_embeddings = json_integer(j, where, "max_position_embeddings", c.max_position_embeddings);
  c.type_vocab_size = json_integer(j, where, "type_vocab_size", c.type_vocab_size);
  c.layer_norm_eps = json_number(j, where, "layer_norm_eps", c.layer_norm_eps);
  c.hidden_dropout_prob = json_number(j, where, "hidden_dropout_prob", c.hidden_dropout_prob);
  c.attention_probs_dropout_prob = json_number(j, where, "attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  c.initializer_range = json_number(j, where, "initializer_range", c.initializer_range);
  c.pad_token_id = json_integer(j, where, "pad_token_id", c.pad_token_id);
  c.validate(where);
  return c;
}

nlohmann::json BertConfig::to_json() const {
  return {{"model_type", "bert"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"intermediate_size", intermediate_size},
          {"hidden_act", hidden_act},
          {"max_position_embeddings", max_position_embeddings},
          {"type_vocab_size", type_vocab_size},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_dropout_prob", hidden_dropout_prob},
          {"attention_probs_dropout_prob", attention_probs_dropout_prob},
          {"initializer_range", initializer_range},
          {"pad_token_id", pad_token_id},
          {"position_embedding_type", "absolute"}};
}

void BertOptions::validate() const {
  config.validate("model.params.");
  if (!(classifier_dropout >= 0 && classifier_dropout < 1)) {
    config_fail("model.params.", "classifier_dropout", "in [0, 1)", classifier_dropout);
  }
  if (!(residual_scale >= 0) || !std::isfinite(residual_scale)) {
    config_fail("model.params.", "residual_scale", "a number >= 0 (0 removes the residual connections)", residual_scale);
  }
  if (num_classes < 1) throw ConfigError("bert: num_classes must be >= 1, got " + std::to_string(num_classes));
}

void apply_bert_preset(const std::string& name, BertConfig& config) {
  struct Preset {
    const char* name;
    int64_t layers, hidden, heads, intermediate;
  };
  static const Preset kPresets[] = {{"tiny", 2, 128, 2, 512},
                                    {"mini", 4, 256, 4, 1024},
                                    {"small", 4, 512, 8, 2048},
                                    {"medium", 8, 512, 8, 2048},
                                    {"base", 12, 768, 12, 3072},
                                    {"large", 24, 1024, 16, 4096}};
  for (const auto& p : kPresets) {
    if (name != p.name) continue;
    config.num_hidden_layers = p.layers;
    config.hidden_size = p.hidden;
    config.num_attention_heads = p.heads;
    config.intermediate_size = p.intermediate;
    return;
  }
  throw ConfigError(param_field("preset") + " must be one of " + join_names(kBertPresets, true) + ", got \"" + name + "\"");
}

nlohmann::json bert_default_params() {
  return {{"preset", "base"},
          {"vocab_size", nullptr},
          {"hidden_size", nullptr},
          {"num_hidden_layers", nullptr},
          {"num_attention_heads", nullptr},
          {"intermediate_size", nullptr},
          {"hidden_act", "gelu"},
          {"max_position_embeddings", 512},
          {"type_vocab_size", 2},
          {"layer_norm_eps", 1e-12},
          {"hidden_dropout_prob", 0.1},
          {"attention_probs_dropout_prob", 0.1},
          {"initializer_range", 0.02},
          {"pad_token_id", 0},
          {"pooling", "cls"},
          {"classifier_dropout", 0.1},
          {"pre_ln", false},
          {"residual_scale", 1.0},
          {"layer_norm", true},
          {"init", "bert"}};
}

BertOptions parse_bert_params(const nlohmann::json& params, int64_t inputs_vocab, int64_t num_classes) {
  const ParamReader reader("bert", params, bert_default_params());
  BertOptions o;
  BertConfig& c = o.config;
  apply_bert_preset(reader.choice("preset", kBertPresets), c);
  auto size = [&](const char* key, int64_t& field, int64_t min) {
    if (!reader.is_null(key)) field = reader.integer(key, min);
  };
  size("hidden_size", c.hidden_size, 1);
  size("num_hidden_layers", c.num_hidden_layers, 0);
  size("num_attention_heads", c.num_attention_heads, 1);
  size("intermediate_size", c.intermediate_size, 1);
  if (!reader.is_null("vocab_size")) {
    c.vocab_size = reader.integer("vocab_size", 1);
    if (inputs_vocab > c.vocab_size) {
      throw ConfigError(param_field("vocab_size") + " is " + std::to_string(c.vocab_size) +
                        " but the inputs' input_ids take " + std::to_string(inputs_vocab) +
                        " ids; leave it null to use the vocabulary's size");
    }
  } else if (inputs_vocab > 0) {
    c.vocab_size = inputs_vocab;
  }
  c.hidden_act = reader.choice("hidden_act", kBertActivations);
  c.max_position_embeddings = reader.integer("max_position_embeddings", 1);
  c.type_vocab_size = reader.integer("type_vocab_size", 1);
  c.layer_norm_eps = reader.positive("layer_norm_eps");
  c.hidden_dropout_prob = reader.probability("hidden_dropout_prob");
  c.attention_probs_dropout_prob = reader.probability("attention_probs_dropout_prob");
  c.initializer_range = reader.positive("initializer_range");
  c.pad_token_id = reader.integer("pad_token_id", 0);
  o.pooling = reader.choice("pooling", {"cls", "mean"}) == "mean" ? BertPooling::kMean : BertPooling::kCls;
  o.classifier_dropout = reader.probability("classifier_dropout");
  o.pre_ln = reader.boolean("pre_ln");
  o.residual_scale = reader.non_negative("residual_scale");
  o.layer_norm = reader.boolean("layer_norm");
  o.init = reader.choice("init", {"bert", "torch"}) == "torch" ? BertInit::kTorch : BertInit::kBert;
  o.num_classes = num_classes;
  o.validate();
  return o;
}

}  // namespace kiln::nn
