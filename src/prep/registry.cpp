// The preprocessor registry. Built-in types are added on the first call into the registry, so that
// linking kiln_prep from a static library never loses them.
#include <map>
#include <mutex>

#include "bag_features.h"
#include "image_features.h"
#include "kiln/prep/ensemble.h"
#include "wordpiece_features.h"
#include "kiln/core/error.h"
#include "kiln/prep/preprocessor.h"

namespace kiln::prep {
namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, PreprocessorType> types;  ///< guarded by mutex
};

Registry& registry() {
  static Registry* instance = [] {
    auto* r = new Registry();  // never destroyed: preprocessors may be built during static destruction
    for (auto t : {tfidf_type(), hashed_ngrams_type(), wordpiece_type(), image_type(), ensemble_type()}) r->types.emplace(t.name, std::move(t));
    return r;
  }();
  return *instance;
}

std::string known_list() {
  std::string out;
  for (const auto& n : preprocessor_types()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The type named by `spec`, or nullptr.
const PreprocessorType* find(const nlohmann::json& spec, PreprocessorType& out) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) return nullptr;
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto it = r.types.find(spec["type"].get<std::string>());
  if (it == r.types.end()) return nullptr;
  out = it->second;
  return &out;
}

}  // namespace

nlohmann::json Preprocessor::spec() const {
  nlohmann::json j = options();
  j["type"] = type();
  return j;
}

void register_preprocessor(PreprocessorType type) {
  if (type.name.empty()) throw ConfigError("register_preprocessor: type name must not be empty");
  if (!type.make || !type.load) throw ConfigError("register_preprocessor: type \"" + type.name + "\" needs make and load");
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.types[type.name] = std::move(type);
}

std::vector<std::string> preprocessor_types() {
  auto& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> out;
  for (const auto& [name, t] : r.types) out.push_back(name);
  return out;
}

std::unique_ptr<Preprocessor> make_preprocessor(const nlohmann::json& spec) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    throw ConfigError("featurizer must be a mapping with a \"type\" (" + known_list() + "), got " + spec.dump());
  }
  PreprocessorType t;
  if (!find(spec, t)) {
    throw ConfigError("featurizer.type '" + spec["type"].get<std::string>() + "' is unknown; use one of: " + known_list());
  }
  return t.make(spec);
}

std::unique_ptr<Preprocessor> load_preprocessor(const nlohmann::json& spec, const StateFiles& files) {
  PreprocessorType t;
  if (!find(spec, t)) {
    const std::string type = spec.is_object() ? spec.value("type", std::string()) : std::string();
    throw ArtifactError("preprocessor type '" + type + "' is unknown to this Kiln (known: " + known_list() +
                        "); upgrade kiln to load this artifact");
  }
  try {
    return t.load(spec, files);
  } catch (const ConfigError& e) {
    throw ArtifactError(std::string("preprocessor spec: ") + e.what());
  }
}

nn::InputSpec combined_input_spec(const Preprocessors& preprocessors) {
  nn::InputSpec spec;
  for (const auto& p : preprocessors) spec.merge(p->input_spec());
  return spec;
}

nn::Batch augment_all(const Preprocessors& preprocessors, const nn::Batch& batch) {
  nn::Batch out = batch;
  for (const auto& p : preprocessors) {
    if (p->augments()) out = p->augment(out);
  }
  return out;
}

bool any_augments(const Preprocessors& preprocessors) {
  for (const auto& p : preprocessors) {
    if (p->augments()) return true;
  }
  return false;
}

nn::Batch encode_all(const Preprocessors& preprocessors, const data::Examples& examples,
                     EncodeObservations* observed) {
  if (observed) *observed = {};
  const auto encode_one = [&](const Preprocessor& p) {
    if (!observed || !observed->oov_rates.empty()) return p.encode(examples);
    return p.encode_observed(examples, *observed);
  };
  if (preprocessors.size() == 1) return encode_one(*preprocessors.front());
  nn::Batch out(static_cast<int64_t>(examples.size()));
  for (const auto& p : preprocessors) {
    const nn::Batch part = encode_one(*p);  // keep it alive while its tensors are read
    for (const auto& [name, t] : part.tensors()) out.set(name, t);
  }
  return out;
}

}  // namespace kiln::prep
