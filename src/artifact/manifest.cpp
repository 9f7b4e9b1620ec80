// kiln.json: the manifest of format 2, and the reading of format 1 into it.
#include "kiln/artifact/artifact.h"

#include <cmath>
#include "kiln/core/error.h"
#include "kiln/core/version.h"

namespace kiln::artifact {
namespace {

using nlohmann::json;

json variant_json(const Variant& v) {
  return {{"file", v.file}, {"ops", v.ops}, {"dtypes", v.dtypes}, {"details", v.details}};
}

Variant variant_from_json(const json& j) {
  Variant v;
  v.file = j.at("file").get<std::string>();
  v.ops = j.value("ops", std::vector<std::string>{});
  v.dtypes = j.value("dtypes", std::map<std::string, std::string>{});
  v.details = j.value("details", json::object());
  return v;
}

}  // namespace

double Manifest::temperature() const {
  if (calibration.is_object() && calibration.value("method", std::string()) == "temperature") {
    return calibration.at("temperature").get<double>();
  }
  return 1.0;
}

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> tasks = {"text-classification", "image-classification",
                                                 "multimodal-classification"};
  return tasks;
}

json to_json(const Manifest& m) {
  json preprocessors = json::array();
  for (const auto& p : m.preprocessors) {
    json options = p.spec;
    options.erase("type");
    preprocessors.push_back({{"type", p.spec.value("type", std::string())}, {"options", options}, {"files", p.files}});
  }
  json variants = json::object();
  for (const auto& [name, v] : m.variants) variants[name] = variant_json(v);
  json heldout = nullptr;
  if (!m.heldout.file.empty()) {
    heldout = {{"file", m.heldout.file}, {"examples", m.heldout.examples}, {"source", m.heldout.source}};
  }
  json out = {{"format_version", m.format_version},
          {"kiln_version", m.kiln_version},
          {"created_at", m.created_at},
          {"task", m.task},
          {"labels", m.labels},
          {"inputs", nn::to_json(m.inputs)},
          {"preprocessors", preprocessors},
          {"model", nn::to_json(m.model)},
          {"training", m.training},
          {"metrics", m.metrics},
          {"data_profile", m.data_profile},
          {"variants", variants},
          {"heldout", heldout},
          {"calibration", m.calibration},
          {"lineage", m.lineage}};
  if (!m.default_variant.empty()) out["default_variant"] = m.default_variant;
  return out;
}

Manifest manifest_from_json(const json& j, const std::string& where) {
  auto fail = [&](const std::string& what) { throw ArtifactError(where + ": " + what); };
  if (!j.is_object()) fail("expected a JSON object; this is not a Kiln artifact manifest");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer()) {
    fail("no integer \"format_version\"; this is not a Kiln artifact (or it is corrupt)");
  }
  Manifest m;
  m.format_version = j["format_version"].get<int>();
  if (m.format_version > kFormatVersion) {
    fail("artifact format " + std::to_string(m.format_version) + " is newer than this Kiln (" + kiln::version() +
         ") reads (format " + std::to_string(kFormatVersion) + "); upgrade kiln to load it");
  }
  if (m.format_version < 1) fail("format_version " + std::to_string(m.format_version) + " is invalid");
  try {
    m.kiln_version = j.value("kiln_version", "");
    m.created_at = j.value("created_at", "");
    m.task = j.at("task").get<std::string>();
    m.labels = j.at("labels").get<std::vector<std::string>>();
    m.model = nn::model_spec_from_json(j.at("model"));
    m.training = j.value("training", json::object());
    m.metrics = j.value("metrics", json::object());
    m.data_profile = j.value("data_profile", json::object());
    if (m.format_version == 1) {
      // One featurizer whose state is featurizer.json; the inputs follow from it when it is loaded.
      const json& featurizer = j.at("featurizer");
      if (!featurizer.is_object() || !featurizer.contains("type")) fail("\"featurizer\" must be an object with a \"type\"");
      const auto input_dim = j.at("input_dim").get<int64_t>();
      if (input_dim < 1) fail("\"input_dim\" must be >= 1, got " + std::to_string(input_dim));
      m.preprocessors.push_back({featurizer, {{"state", "featurizer.json"}}});
      m.inputs.tensors.push_back({nn::kBagIndices, "int64", {"nnz"}, input_dim});
      m.inputs.tensors.push_back({nn::kBagOffsets, "int64", {"batch"}, 0});
      m.inputs.tensors.push_back({nn::kBagWeights, "float32", {"nnz"}, 0});
    } else {
      m.inputs = nn::input_spec_from_json(j.at("inputs"), "\"inputs\"");
      const json& pre = j.at("preprocessors");
      if (!pre.is_array() || pre.empty()) fail("\"preprocessors\" must be a non-empty list");
      for (std::size_t i = 0; i < pre.size(); ++i) {
        const json& e = pre[i];
        const std::string at = "\"preprocessors\"[" + std::to_string(i) + "]";
        if (!e.is_object() || !e.contains("type") || !e["type"].is_string()) fail(at + " must be an object with a \"type\"");
        json spec = e.value("options", json::object());
        if (!spec.is_object()) fail(at + ".options must be an object");
        spec["type"] = e["type"];
        PreprocessorEntry entry{spec, e.value("files", std::map<std::string, std::string>{})};
        for (const auto& [role, file] : entry.files) {
          if (file.empty() || file.find("..") != std::string::npos || file.front() == '/') {
            fail(at + ".files." + role + " must be a file name inside the artifact, got '" + file + "'");
          }
        }
        m.preprocessors.push_back(std::move(entry));
      }
      if (j.contains("variants") && !j["variants"].is_null()) {
        for (const auto& [name, v] : j.at("variants").items()) m.variants[name] = variant_from_json(v);
      }
      m.default_variant = j.value("default_variant", std::string());
      if (!m.default_variant.empty() && m.default_variant != "fp32" && !m.variants.count(m.default_variant)) {
        fail("\"default_variant\" is '" + m.default_variant + "' but \"variants\" has no such entry");
      }
      if (m.default_variant == "fp32") m.default_variant.clear();
      if (j.contains("heldout") && !j["heldout"].is_null()) {
        const json& h = j["heldout"];
        m.heldout.file = h.at("file").get<std::string>();
        m.heldout.examples = h.value("examples", int64_t{0});
        m.heldout.source = h.value("source", std::string());
      }
      m.lineage = j.value("lineage", json::object());
      if (j.contains("calibration") && !j["calibration"].is_null()) {
        m.calibration = j["calibration"];
        const auto method = m.calibration.is_object() ? m.calibration.value("method", std::string()) : std::string();
        if (method == "temperature") {
          const auto& t = m.calibration.contains("temperature") ? m.calibration["temperature"] : json();
          if (!t.is_number() || !(t.get<double>() > 0) || !std::isfinite(t.get<double>())) {
            fail("\"calibration\".temperature must be a finite number > 0, got " + t.dump());
          }
        } else if (method != "none") {
          fail("\"calibration\".method '" + method + "' is unknown to this Kiln (known: temperature, none)");
        }
      }
    }
  } catch (const json::exception& e) {
    fail(std::string("malformed manifest: ") + e.what());
  } catch (const ConfigError& e) {
    fail(std::string("malformed manifest: ") + e.what());
  }
  bool known = false;
  for (const auto& t : known_tasks()) known = known || t == m.task;
  if (!known) {
    std::string list;
    for (const auto& t : known_tasks()) list += (list.empty() ? "" : ", ") + t;
    fail("task '" + m.task + "' is not supported (expected one of: " + list + ")");
  }
  if (m.labels.size() < 2) fail("\"labels\" must list at least 2 classes, got " + std::to_string(m.labels.size()));
  return m;
}

}  // namespace kiln::artifact
