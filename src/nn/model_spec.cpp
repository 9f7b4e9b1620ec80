#include "kiln/nn/model_spec.h"

#include "kiln/core/error.h"

namespace kiln::nn {

nlohmann::json to_json(const ModelSpec& spec) {
  return {{"family", spec.family}, {"params", spec.params.is_null() ? nlohmann::json::object() : spec.params}};
}

ModelSpec model_spec_from_json(const nlohmann::json& j) {
  if (!j.is_object()) {
    throw ConfigError("model must be an object {\"family\": string, \"params\": object}, got " + j.dump());
  }
  ModelSpec spec;
  for (const auto& item : j.items()) {
    const auto& key = item.key();
    const auto& value = item.value();
    if (key == "family") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        throw ConfigError("model.family must be a non-empty string such as \"mlp\", got " + value.dump());
      }
      spec.family = value.get<std::string>();
    } else if (key == "params") {
      if (value.is_null()) continue;
      if (!value.is_object()) throw ConfigError("model.params must be an object, got " + value.dump());
      spec.params = value;
    } else {
      throw ConfigError("model." + key + " is not a model field; valid fields: family, params (family parameters go under model.params)");
    }
  }
  return spec;
}

}  // namespace kiln::nn
