#include "kiln/core/yaml.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"

namespace kiln::core {
namespace {

nlohmann::json scalar_to_json(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "Yes") return true;
  if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "No") return false;
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(begin, &end, 10);
  if (errno == 0 && end && *end == '\0' && end != begin) return static_cast<int64_t>(i);
  errno = 0;
  double d = std::strtod(begin, &end);
  if (errno == 0 && end && *end == '\0' && end != begin) return d;
  return s;
}

nlohmann::json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& item : node) a.push_back(to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : node) o[kv.first.as<std::string>()] = to_json(kv.second);
      return o;
    }
  }
  return nullptr;
}

}  // namespace

nlohmann::json parse_yaml(const std::string& text, const std::string& where) {
  try {
    return to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(where + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": invalid YAML: " + e.msg + "; check indentation and quoting");
  }
}

nlohmann::json load_yaml_file(const std::string& path) { return parse_yaml(read_file(path), path); }

}  // namespace kiln::core
