// YAML configs as JSON values: YAML and CLI flags fill the same Options structs through JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace kiln::core {

/// Parses a YAML document into JSON. Scalars become numbers (integers stay integers), booleans
/// (true/false/yes/no), null (~, null, empty) or strings; quoted scalars stay strings.
/// Throws ConfigError naming `where`:line:column for YAML syntax errors.
[[nodiscard]] nlohmann::json parse_yaml(const std::string& text, const std::string& where);

/// Reads and parses a YAML file (IoError for a missing file, ConfigError for bad YAML).
[[nodiscard]] nlohmann::json load_yaml_file(const std::string& path);

}  // namespace kiln::core
