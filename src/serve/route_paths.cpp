#include "route_paths.h"

#include <vector>

namespace kiln::serve {

namespace {

/// The '/'-separated parts of `path` after `prefix`; false when it does not start with it.
bool split_after(const std::string& path, const std::string& prefix, std::vector<std::string>& parts) {
  if (path.rfind(prefix, 0) != 0) return false;
  parts.clear();
  std::size_t i = prefix.size();
  while (i <= path.size()) {
    const auto j = path.find('/', i);
    parts.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return !parts.empty() && !parts[0].empty();
}

}  // namespace

bool parse_v2_model_path(const std::string& path, ModelPath& out) {
  std::vector<std::string> parts;
  if (!split_after(path, "/v2/models/", parts)) return false;
  out = ModelPath{parts[0], "", ""};
  std::size_t k = 1;
  if (k < parts.size() && parts[k] == "versions") {
    if (k + 1 >= parts.size() || parts[k + 1].empty()) return false;
    out.version = parts[k + 1];
    k += 2;
  }
  if (k == parts.size()) return true;
  if (k + 1 == parts.size() && (parts[k] == "ready" || parts[k] == "infer")) {
    out.action = parts[k];
    return true;
  }
  return false;
}

bool parse_v1_model_path(const std::string& path, ModelPath& out) {
  std::vector<std::string> parts;
  if (!split_after(path, "/v1/models/", parts) || parts.size() > 2) return false;
  out = ModelPath{parts[0], "", parts.size() == 2 ? parts[1] : ""};
  return parts.size() == 1 || parts[1] == "predict";
}

bool parse_repository_path(const std::string& path, ModelPath& out) {
  std::vector<std::string> parts;
  if (!split_after(path, "/v2/repository/models/", parts) || parts.size() != 2) return false;
  out = ModelPath{parts[0], "", parts[1]};
  return parts[1] == "load" || parts[1] == "unload";
}

std::string route_label(const std::string& path) {
  if (path == "/index.html") return "/";
  static const char* const kKnown[] = {"/",               "/v1/predict",     "/v1/explain",     "/v1/model",        "/v1/models",       "/healthz",
                                       "/readyz",         "/metrics",         "/v1/admin/reload", "/v1/admin/load",
                                       "/v1/admin/unload", "/v2",             "/v2/health/live",  "/v2/health/ready",
                                       "/v2/repository/index"};
  for (const char* r : kKnown) {
    if (path == r) return r;
  }
  ModelPath m;
  if (parse_v2_model_path(path, m)) return m.action.empty() ? "/v2/models/{name}" : "/v2/models/{name}/" + m.action;
  if (parse_v1_model_path(path, m)) return m.action.empty() ? "/v1/models/{name}" : "/v1/models/{name}/" + m.action;
  if (parse_repository_path(path, m)) return "/v2/repository/models/{name}/" + m.action;
  return "other";
}

}  // namespace kiln::serve
