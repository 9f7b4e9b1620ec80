#include "kiln/nn/input_spec.h"

#include "kiln/core/error.h"

namespace kiln::nn {

const TensorSpec* InputSpec::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void InputSpec::merge(const InputSpec& other) {
  for (const auto& t : other.tensors) {
    if (find(t.name)) {
      throw ConfigError("two preprocessors both produce the tensor '" + t.name +
                        "'; a model's preprocessors must produce different tensors (one per modality)");
    }
    tensors.push_back(t);
  }
}

std::string InputSpec::describe() const {
  if (tensors.empty()) return "no tensors";
  std::string out;
  for (const auto& t : tensors) {
    if (!out.empty()) out += ", ";
    out += t.name + " " + t.dtype + " [";
    for (std::size_t i = 0; i < t.shape.size(); ++i) out += (i ? ", " : "") + t.shape[i];
    out += "]";
    if (t.vocab_size > 0) out += " (vocab " + std::to_string(t.vocab_size) + ")";
  }
  return out;
}

nlohmann::json to_json(const InputSpec& spec) {
  auto out = nlohmann::json::array();
  for (const auto& t : spec.tensors) {
    auto shape = nlohmann::json::array();
    for (const auto& d : t.shape) {
      const bool fixed = !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
      if (fixed) {
        shape.push_back(std::stoll(d));
      } else {
        shape.push_back(d);
      }
    }
    nlohmann::json j = {{"name", t.name}, {"dtype", t.dtype}, {"shape", shape}};
    if (t.vocab_size > 0) j["vocab_size"] = t.vocab_size;
    out.push_back(j);
  }
  return out;
}

InputSpec input_spec_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) throw ConfigError(where + " must be a list of tensors, got " + j.dump());
  InputSpec spec;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("dtype") ||
        !e["dtype"].is_string() || !e.contains("shape") || !e["shape"].is_array()) {
      throw ConfigError(at + " must be {\"name\": string, \"dtype\": string, \"shape\": [...]}, got " + e.dump());
    }
    TensorSpec t;
    t.name = e["name"].get<std::string>();
    t.dtype = e["dtype"].get<std::string>();
    for (const auto& d : e["shape"]) {
      if (d.is_number_integer() && d.get<int64_t>() >= 0) {
        t.shape.push_back(std::to_string(d.get<int64_t>()));
      } else if (d.is_string() && !d.get<std::string>().empty()) {
        t.shape.push_back(d.get<std::string>());
      } else {
        throw ConfigError(at + ".shape entries must be sizes >= 0 or dimension names, got " + d.dump());
      }
    }
    if (e.contains("vocab_size")) {
      if (!e["vocab_size"].is_number_integer() || e["vocab_size"].get<int64_t>() < 1) {
        throw ConfigError(at + ".vocab_size must be an integer >= 1, got " + e["vocab_size"].dump());
      }
      t.vocab_size = e["vocab_size"].get<int64_t>();
    }
    if (spec.find(t.name)) throw ConfigError(at + ": tensor '" + t.name + "' is listed twice");
    spec.tensors.push_back(std::move(t));
  }
  return spec;
}

void check_inputs(const std::string& family, const InputRequirements& needs, const InputSpec& spec) {
  for (const auto& name : needs.required) {
    if (spec.find(name)) continue;
    std::string fix;
    if (name.rfind("bag_", 0) == 0) fix = "a bag-of-features preprocessor (tfidf or hashed_ngrams)";
    else if (name == kPixelValues) fix = "an image preprocessor";
    else fix = "a token preprocessor (wordpiece)";
    throw ConfigError("model family '" + family + "' needs the input tensor '" + name + "' but the preprocessors produce " +
                      spec.describe() + "; use " + fix + " or another model family");
  }
}

}  // namespace kiln::nn
