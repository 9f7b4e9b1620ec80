// The admin routes: Kiln's POST /v1/admin/{reload,load,unload} and Triton's model repository
// extension (POST /v2/repository/index, /v2/repository/models/{name}/load, .../unload). All behind
// the bearer token when one is set; all read artifacts under the model root only. Also the default
// model's page, which follows its loads.
#include <algorithm>
#include <filesystem>

#include "json_body.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/serve/auth_token.h"
#include "route_paths.h"
#include "served_model.h"
#include "server_impl.h"

namespace kiln::serve {

namespace fs = std::filesystem;

namespace {

bool is_under(const fs::path& path, const fs::path& root) {
  const auto rel = path.lexically_relative(root);
  if (rel.empty()) return false;
  const auto first = *rel.begin();
  return first != ".." && rel.is_relative();
}

/// An admin request's body: a JSON object (or nothing) whose keys are among `keys`, string-valued
/// except "parameters" (an object) and "ready" (a boolean). False, with `message` set and `code`
/// "invalid_json" or "invalid_request", otherwise.
bool parse_admin_body(const std::string& body, const std::vector<std::string>& keys, nlohmann::json& out,
                      std::string& message, std::string* code = nullptr) {
  if (code) *code = "invalid_request";
  out = nlohmann::json::object();
  std::string list;
  for (const auto& k : keys) list += (list.empty() ? "\"" : ", \"") + k + "\"";
  const std::string hint = "send a JSON object with " + list + " (each optional) or an empty body";
  if (body.empty()) return true;
  RequestError err;
  if (!parse_json_body(body, out, err, hint)) {
    message = err.message;
    if (code) *code = "invalid_json";
    return false;
  }
  if (!out.is_object()) {
    message = "the body must be a JSON object; " + hint;
    return false;
  }
  for (const auto& [k, v] : out.items()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      message = "unknown field \"" + k + "\"; " + hint;
      return false;
    }
    if (k == "parameters" ? !v.is_object() : (k == "ready" ? !v.is_boolean() : !v.is_string())) {
      message = "field \"" + k + "\" has the wrong type; " + hint;
      return false;
    }
  }
  return true;
}

}  // namespace

void Server::Impl::refresh_page() {
  if (!options.home_page) return;
  std::shared_ptr<const std::string> fresh;
  try {
    const ModelLease lease = models->acquire_default();
    if (lease) fresh = std::make_shared<const std::string>(options.home_page(lease->model()->dir(), lease->name()));
  } catch (const std::exception& e) {
    core::warn("serve: the model page (GET /) failed to render, GET / answers 500 until a reload: " + first_line(e.what()));
  }
  std::atomic_store(&page, std::move(fresh));
}

bool Server::Impl::authorized(const http::Request& req, http::Responder& res) {
  if (options.auth_token.empty()) return true;
  const std::string* auth = req.header("authorization");
  const std::string prefix = "Bearer ";
  if (auth && auth->rfind(prefix, 0) == 0 && constant_time_equal(auth->substr(prefix.size()), options.auth_token)) {
    return true;
  }
  auto r = error(401, "unauthorized",
                 !auth ? "admin routes need the header `Authorization: Bearer <token>` (the server's --auth-token-file)"
                       : "the bearer token does not match the server's --auth-token-file");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  send(res, std::move(r));
  return false;
}

std::string Server::Impl::under_model_root(const std::string& dir) const {
  // Decide on the path's text first: nothing outside the root is ever opened or stat'ed, so the
  // answer says nothing about what exists there. Then resolve symbolic links inside the root.
  fs::path lexical(dir);
  if (lexical.is_relative()) lexical = fs::current_path() / lexical;
  lexical = lexical.lexically_normal();
  if (!is_under(lexical, model_root)) return {};
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(lexical, ec);
  if (ec || !is_under(resolved, model_root)) return {};
  return resolved.string();
}

bool Server::Impl::handle_admin_route(http::Request& req, http::Responder& res) {
  const std::string& path = req.path;
  if (path == "/v1/admin/reload") {
    reload_route(req, res);
    return true;
  }
  if (path == "/v2/repository/index") {
    index_route(req, res);
    return true;
  }
  ModelPath p;
  if (parse_repository_path(path, p)) {
    if (p.action == "load") {
      load_route(req, res, p.name, true);
    } else {
      unload_route(req, res, p.name, true);
    }
    return true;
  }
  if (path == "/v1/admin/load" || path == "/v1/admin/unload") {
    const bool load = path == "/v1/admin/load";
    nlohmann::json j;
    std::string message;
    if (!parse_admin_body(req.body, load ? std::vector<std::string>{"model", "artifact"} : std::vector<std::string>{"model"},
                          j, message) ||
        !j.contains("model")) {
      send(res, error(400, "invalid_request",
                      message.empty() ? std::string("the body must name the model: {\"model\": \"NAME\"") +
                                            (load ? ", \"artifact\": \"DIR\"}" : "}")
                                      : message));
      return true;
    }
    if (load) {
      load_route(req, res, j["model"].get<std::string>(), false);
    } else {
      unload_route(req, res, j["model"].get<std::string>(), false);
    }
    return true;
  }
  return false;
}

void Server::Impl::reload_route(http::Request& req, http::Responder& res) {
  nlohmann::json j;
  std::string message, code;
  if (!parse_admin_body(req.body, {"model", "artifact"}, j, message, &code)) {
    return send(res, error(400, code,
                           code == "invalid_json"
                               ? message
                               : "reload body must be {\"model\": \"NAME\", \"artifact\": \"DIR\"} (both optional: the "
                                 "default model, its current artifact): " + message));
  }
  const std::string name = j.value("model", models->default_name());
  const std::string current = models->artifact_of(name);
  if (current.empty()) {
    return send(res, error(404, "model_not_found",
                           "model '" + name + "' is not loaded; load it with POST /v1/admin/load {\"model\": \"" + name +
                               "\"} or POST /v2/repository/models/" + name + "/load"));
  }
  std::string dir = current;
  if (j.contains("artifact")) {
    dir = under_model_root(j["artifact"].get<std::string>());
    if (dir.empty()) {
      return send(res, error(403, "forbidden",
                             "reload loads artifacts under the server's --model-root " + model_root.string() +
                                 " only; copy the artifact there or restart with another --model-root"));
    }
  }
  try {
    std::string previous;
    const std::string version = load_model(name, dir, &previous);
    nlohmann::json out = {{"status", "reloaded"}, {"model", name},       {"version", version},
                          {"previous_version", previous}, {"artifact", dir}};
    send(res, json(out.dump()));
  } catch (const Error& e) {
    // Kiln's own messages (which file, what is wrong) for an artifact under the model root.
    send(res, error(422, "reload_failed", first_line(e.what()) + "; the previous model keeps serving"));
  } catch (const std::exception& e) {
    send(res, internal_error("reload_failed", "the artifact did not load; the previous model keeps serving",
                             "reload of " + dir + ": " + first_line(e.what())));
  }
}

void Server::Impl::load_route(http::Request& req, http::Responder& res, const std::string& name, bool v2) {
  const auto fail = [&](int status, const std::string& code, const std::string& message) {
    send(res, v2 ? v2_error(status, code, message) : error(status, code, message));
  };
  std::string artifact;
  if (v2) {
    nlohmann::json j;
    std::string message;
    if (!parse_admin_body(req.body, {"parameters"}, j, message)) return fail(400, "invalid_request", message);
    if (j.contains("parameters") && !j["parameters"].empty()) {
      return fail(400, "invalid_request",
                  "load parameters (a model configuration or files in the request) are not supported; put the artifact "
                  "in the repository as NAME/ and send an empty body");
    }
  } else {
    nlohmann::json j;
    std::string message;
    (void)parse_admin_body(req.body, {"model", "artifact"}, j, message);  // checked by the caller
    artifact = j.value("artifact", std::string());
  }
  if (!valid_model_name(name)) {
    return fail(400, "invalid_request",
                "'" + name + "' is not a model name (1-128 letters, digits, '.', '_', '-'): a model is named by its "
                "subdirectory of the repository");
  }
  const std::string current = models->artifact_of(name);
  std::string dir = !artifact.empty() ? artifact : !current.empty() ? current : models->directory_of(name);
  const std::string checked = under_model_root(dir);
  if (checked.empty()) {
    return fail(403, "forbidden",
                "load reads artifacts under the server's --model-root " + model_root.string() +
                    " only; copy the artifact there or restart with another --model-root");
  }
  if (current.empty() && artifact.empty() && !holds_artifact(checked)) {
    return fail(404, "model_not_found",
                "no model '" + name + "' in the repository: " + checked + " holds no kiln.json; copy an artifact there "
                "(kiln train --out " + checked + ")");
  }
  try {
    std::string previous;
    const std::string version = load_model(name, checked, &previous);
    if (v2) return send(res, json(""));
    nlohmann::json out = {{"status", previous.empty() ? "loaded" : "reloaded"}, {"model", name}, {"version", version},
                          {"artifact", checked}};
    if (!previous.empty()) out["previous_version"] = previous;
    send(res, json(out.dump()));
  } catch (const Error& e) {
    const std::string message = "model '" + name + "' did not load: " + first_line(e.what()) +
                                (current.empty() ? "; the other models keep serving" : "; its previous artifact keeps serving");
    fail(v2 ? 400 : 422, "load_failed", message);
  } catch (const std::exception& e) {
    send(res, internal_error("load_failed", "the artifact did not load; the other models keep serving",
                             "load of " + checked + ": " + first_line(e.what()), v2));
  }
}

void Server::Impl::unload_route(http::Request& req, http::Responder& res, const std::string& name, bool v2) {
  const auto fail = [&](int status, const std::string& code, const std::string& message) {
    send(res, v2 ? v2_error(status, code, message) : error(status, code, message));
  };
  if (v2) {
    nlohmann::json j;
    std::string message;
    if (!parse_admin_body(req.body, {"parameters"}, j, message)) return fail(400, "invalid_request", message);
  }
  if (name == models->default_name()) {
    return fail(409, "default_model",
                "model '" + name + "' is the default model (/v1/predict) and stays loaded; reload it with another "
                "artifact instead, or restart with another --default-model");
  }
  auto shared = std::make_shared<http::Responder>(std::move(res));
  const bool unloading = models->unload_async(name, [this, shared, name, v2] {
    send(*shared, json(v2 ? std::string() : nlohmann::json{{"status", "unloaded"}, {"model", name}}.dump()));
  });
  if (!unloading) {
    const std::string message = "model '" + name + "' is not loaded";
    send(*shared, v2 ? v2_error(404, "model_not_found", message) : error(404, "model_not_found", message));
  }
}

void Server::Impl::index_route(http::Request& req, http::Responder& res) {
  nlohmann::json j;
  std::string message;
  if (!parse_admin_body(req.body, {"ready"}, j, message)) return send(res, v2_error(400, "invalid_request", message));
  const bool ready_only = j.value("ready", false);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : models->index()) {
    if (ready_only && e.state != "READY") continue;
    nlohmann::json entry = {{"name", e.name}, {"state", e.state}};
    if (!e.version.empty()) entry["version"] = e.version;
    if (!e.reason.empty()) entry["reason"] = e.reason;
    out.push_back(std::move(entry));
  }
  send(res, json(out.dump()));
}

}  // namespace kiln::serve
