// Routes that other modules add through ServerOptions::extensions (extension.h).
#include <set>

#include "kiln/core/error.h"
#include "route_paths.h"
#include "server_impl.h"

namespace kiln::serve {

void Server::Impl::index_extensions() {
  // Paths the server answers itself (prefixes end in '/').
  static const std::set<std::string> kBuiltIn = {"/v1/predict", "/v1/explain", "/v1/model", "/v1/models", "/healthz",
                                                 "/readyz", "/metrics", "/", "/index.html", "/v2",
                                                 "/v1/admin/reload", "/v1/admin/load", "/v1/admin/unload"};
  for (const auto& ext : options.extensions) {
    if (!ext) throw ConfigError("ServerOptions::extensions holds a null extension");
    for (const auto& path : ext->routes()) {
      const bool built_in = kBuiltIn.count(path) || path.rfind("/v1/models/", 0) == 0 || path.rfind("/v2/", 0) == 0;
      if (path.empty() || path[0] != '/' || built_in) {
        throw ConfigError("an extension claims the route '" + path + "', which the server answers itself (or is not a path)");
      }
      if (!extension_routes.emplace(path, ext.get()).second) {
        throw ConfigError("two extensions claim the route '" + path + "'");
      }
    }
  }
}

bool Server::Impl::handle_extension_route(http::Request& req, http::Responder& res) {
  const auto it = extension_routes.find(req.path);
  if (it == extension_routes.end()) return false;
  Extension* ext = it->second;
  offload(std::move(req), std::move(res), [ext](Impl& s, http::Request& q, http::Responder& r) {
    ExtensionRequest er;
    er.method = q.method;
    er.path = q.path;
    er.body = std::move(q.body);
    if (const std::string* auth = q.header("authorization")) er.authorization = *auth;
    ExtensionResponse a = ext->handle(er);
    http::Response resp = a.code.empty() ? json(std::move(a.body), a.status) : s.error(a.status, a.code, a.body);
    for (auto& h : a.headers) resp.headers.push_back(std::move(h));
    s.send(r, std::move(resp));
  });
  return true;
}

}  // namespace kiln::serve
