// The server's routes with a model name in their path, parsed, and the route label of any path
// (the `route` of kiln_requests_total: templates, never the name a client sent).
#pragma once

#include <string>

namespace kiln::serve {

struct ModelPath {
  std::string name;
  /// /v2/models/{name}/versions/{version}/...; empty without.
  std::string version;
  /// What follows the name: "" (metadata), "ready", "infer", "predict", "load", "unload".
  std::string action;
};

/// /v2/models/{name}[/versions/{version}][/ready|/infer]
[[nodiscard]] bool parse_v2_model_path(const std::string& path, ModelPath& out);
/// /v1/models/{name}[/predict]
[[nodiscard]] bool parse_v1_model_path(const std::string& path, ModelPath& out);
/// /v2/repository/models/{name}/load|unload
[[nodiscard]] bool parse_repository_path(const std::string& path, ModelPath& out);
/// The path itself for fixed routes, its template for routes with a model name, else "other".
[[nodiscard]] std::string route_label(const std::string& path);

}  // namespace kiln::serve
