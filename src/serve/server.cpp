#include "kiln/serve/server.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "explain_route.h"
#include "json_body.h"
#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/serve/metrics.h"
#include "predict_response.h"
#include "route_paths.h"
#include "served_model.h"
#include "server_impl.h"

namespace kiln::serve {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

/// Shortest time between the start of a drain and closing the listener.
constexpr std::chrono::milliseconds kMinDrain{200};

const char* const kRoutesHelp =
    "routes: POST /v1/predict, POST /v1/explain, POST /v1/models/{name}/predict, GET /v1/model, GET /v1/models, GET /v1/models/{name}, "
    "GET /healthz, GET /readyz, GET /metrics, POST /v1/admin/reload, POST /v1/admin/load, POST /v1/admin/unload, "
    "GET /v2, GET /v2/health/live, GET /v2/health/ready, GET /v2/models/{name}, GET /v2/models/{name}/ready, "
    "POST /v2/models/{name}/infer, POST /v2/repository/index, POST /v2/repository/models/{name}/load, "
    "POST /v2/repository/models/{name}/unload, GET / (the default model's page)";

/// A path made absolute and normalized without touching the file system.
fs::path lexical_absolute(const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::current_path() / path;
  return path.lexically_normal();
}

}  // namespace

http::Response Server::Impl::internal_error(const std::string& code, const std::string& public_message,
                                            const std::string& detail, bool v2) {
  const std::string id = next_request_id();
  core::warn("serve: request " + id + ": " + detail);
  const std::string msg = public_message + " (request_id " + id + "; the server log has the details)";
  if (v2) {
    metrics.errors->labels({code}).inc();
    nlohmann::json j = {{"error", msg}, {"request_id", id}};
    return json(j.dump(), 500);
  }
  return error(500, code, msg, id);
}

void Server::Impl::register_metrics() {
  metrics.registry.on_collect([this] {
    metrics.ready->labels({}).set(draining ? 0.0 : 1.0);
    if (http) {
      const auto& s = http->stats();
      metrics.connections_accepted->labels({}).mirror(static_cast<double>(s.accepted.load()));
      metrics.connections_rejected->labels({}).mirror(static_cast<double>(s.rejected.load()));
      metrics.connection_timeouts->labels({"header"}).mirror(static_cast<double>(s.header_timeouts.load()));
      metrics.connection_timeouts->labels({"body"}).mirror(static_cast<double>(s.body_timeouts.load()));
      metrics.connection_timeouts->labels({"idle"}).mirror(static_cast<double>(s.idle_timeouts.load()));
      metrics.connection_timeouts->labels({"write"}).mirror(static_cast<double>(s.write_timeouts.load()));
      metrics.connections_open->labels({}).set(static_cast<double>(s.open.load()));
    }
    if (models) {
      models->with_loaded([this](const std::vector<std::shared_ptr<const ModelSlot>>& slots) {
        for (const auto& slot : slots) {
          const std::string& name = slot->name();
          metrics.queue_depth->labels({name}).set(static_cast<double>(slot->batcher().queue_depth()));
          const auto m = slot->model();
          if (!m->has_drift()) continue;
          const auto d = m->drift();
          metrics.drift_psi->labels({name, "text_length"}).set(d.length_psi);
          metrics.drift_oov->labels({name}).set(d.oov_rate);
          metrics.drift_shift->labels({name}).set(d.top_feature_shift);
          metrics.drift_window->labels({name}).set(static_cast<double>(d.window));
          if (const auto shift = m->importance_shift()) metrics.importance_shift->labels({name}).set(*shift);
          if (m->reads_images()) {
            metrics.drift_psi->labels({name, "image_intensity"}).set(d.intensity_psi);
            metrics.drift_psi->labels({name, "image_size"}).set(d.size_psi);
            metrics.drift_intensity->labels({name}).set(d.mean_intensity);
          }
        }
      });
    }
    if (metrics.gpu_util) {
      for (const auto& g : gpu.sample()) {
        const std::string id = std::to_string(g.index);
        metrics.gpu_util->labels({id}).set(g.utilization_ratio);
        metrics.gpu_mem_used->labels({id}).set(g.memory_used_bytes);
        metrics.gpu_mem_total->labels({id}).set(g.memory_total_bytes);
        metrics.gpu_temp->labels({id}).set(g.temperature_celsius);
      }
    }
  });
}

void Server::Impl::announce_arrival(http::Request& req, const ModelSlot& slot) {
  // The request is read and about to be parsed and encoded on a worker: a batch may wait
  // (max_delay_ms) for it. Counted from here, not from its headers, so a client that sends its
  // body slowly never holds batches back.
  Batcher* b = &slot.batcher();
  b->arriving();
  req.guard = http::ScopeGuard([b] { b->arrived(); });
}

void Server::Impl::guarded(http::Request& rq, http::Responder& rs, const RouteFn& fn, bool v2) {
  try {
    fn(*this, rq, rs);
  } catch (const std::exception& e) {
    send(rs, internal_error("internal_error", "the server failed on this request",
                            rq.method + " " + rq.path + ": " + first_line(e.what()), v2));
  } catch (...) {
    send(rs, internal_error("internal_error", "the server failed on this request",
                            rq.method + " " + rq.path + ": unknown exception", v2));
  }
}

void Server::Impl::offload(http::Request&& req, http::Responder res, RouteFn fn, bool v2) {
  auto task = std::make_shared<std::pair<http::Request, http::Responder>>(std::move(req), std::move(res));
  http->offload([this, task, fn = std::move(fn), v2] { guarded(task->first, task->second, fn, v2); });
}

void Server::Impl::method_not_allowed(http::Request& req, http::Responder& res, const char* allow) {
  auto r = error(405, "method_not_allowed", req.method + " " + req.path + " is not supported; use " + allow + " " + req.path);
  r.headers.emplace_back("Allow", allow);
  send(res, std::move(r));
}

void Server::Impl::handle(http::Request&& req, http::Responder res, Server&) {
  const std::string& path = req.path;
  const std::string& method = req.method;
  if ((path.rfind("/v1/admin/", 0) == 0 || path.rfind("/v2/repository/", 0) == 0) && !authorized(req, res)) return;
  if (handle_extension_route(req, res)) return;
  if (handle_model_route(req, res)) return;
  if (path == "/v1/explain") {  // explain_route.cpp; the default model
    if (method != "POST") return method_not_allowed(req, res, "POST");
    ModelLease lease = models->acquire_default();
    if (!lease) return send(res, error(503, "not_ready", "the default model is not loaded"));
    return offload(std::move(req), std::move(res), [lease](Impl& s, http::Request& q, http::Responder& r) {
      const auto m = lease->model();
      const InputCheck check = [&m, &s](const PredictRequest& pr, RequestError& e) {
        return m->check_inputs(pr, s.options.limits, e, /*v2=*/false);
      };
      auto a = explain_route(m->predictor(), m->version(), q.body, s.options.limits, check);
      if (a.status == 200) return s.send(r, s.json(std::move(a.body)));
      if (a.status == 500) return s.send(r, s.internal_error(a.code, "the server could not explain these inputs", a.message));
      s.send(r, s.error(a.status, a.code, a.message));
    });
  }
  if (path == "/healthz") {
    if (method != "GET") return method_not_allowed(req, res, "GET");
    return send(res, json("{\"status\":\"ok\"}"));
  }
  if (path == "/readyz") {
    if (method != "GET") return method_not_allowed(req, res, "GET");
    const ModelLease lease = models->acquire_default();
    if (draining || !lease) return send(res, json("{\"status\":\"draining\"}", 503));
    return send(res, json("{\"status\":\"ready\",\"model_version\":" + nlohmann::json(lease->model()->version()).dump() + "}"));
  }
  if (path == "/" || path == "/index.html") {
    if (method != "GET") return method_not_allowed(req, res, "GET");
    if (!options.home_page) return send(res, error(404, "not_found", "this server has no page (--no-page); " + std::string(kRoutesHelp)));
    const auto html = std::atomic_load(&page);
    if (!html) return send(res, internal_error("internal_error", "the model page failed to render", "GET /: no page"));
    http::Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = *html;
    r.headers = {{"Cache-Control", "no-cache"}, {"X-Content-Type-Options", "nosniff"}};
    return send(res, std::move(r));
  }
  if (path == "/metrics") {
    if (method != "GET") return method_not_allowed(req, res, "GET");
    return offload(std::move(req), std::move(res), [](Impl& s, http::Request&, http::Responder& r) {
      http::Response m;
      m.content_type = "text/plain; version=0.0.4; charset=utf-8";
      m.body = s.metrics.registry.render();
      s.send(r, std::move(m));
    });
  }
  // The Open Inference Protocol.
  if (path == "/v2" || path == "/v2/health/live" || path == "/v2/health/ready") {
    if (method != "GET") return method_not_allowed(req, res, "GET");
    if (path == "/v2") return send(res, json(v2::server_metadata()));
    // Health answers are the status code alone, with an empty body (the protocol's "Health").
    if (path == "/v2/health/live") return send(res, json(""));
    if (draining) return send(res, v2_error(400, "not_ready", "the server is draining"));
    return send(res, json(""));
  }
  if (path.rfind("/v1/admin/", 0) == 0 || path.rfind("/v2/repository/", 0) == 0) {
    if (method != "POST") return method_not_allowed(req, res, "POST");
    auto run = [](Impl& s, http::Request& q, http::Responder& r) {
      if (!s.handle_admin_route(q, r)) {
        s.send(r, s.error(404, "not_found", "no route " + q.method + " " + q.path + "; " + kRoutesHelp));
      }
    };
    return offload(std::move(req), std::move(res), run, path.rfind("/v2/", 0) == 0);
  }
  send(res, error(404, "not_found", "no route " + method + " " + path + "; " + kRoutesHelp));
}

Server::Server(std::string artifact_dir, ServerOptions options, ModelLoader loader)
    : impl_((options.validate(), std::make_unique<Impl>(std::move(options)))) {
  auto& m = *impl_;
  m.loader = loader ? std::move(loader) : [](const std::string& dir, std::size_t window, const std::string& device) {
    return std::shared_ptr<const ServedModel>(std::make_shared<ServedModel>(dir, window, device));
  };
  if (m.options.inference_threads > 0) {
    core::set_threads(m.options.inference_threads);
    at::set_num_threads(m.options.inference_threads);
    core::set_blas_threads(m.options.inference_threads);  // OpenBLAS's pool is not LibTorch's
  }
  const RepositoryLayout layout = discover_models(artifact_dir, m.options.model_name, m.options.default_model);
  {
    // Load and reload read under the model root: the repository, or the single artifact's parent.
    std::error_code ec;
    fs::path root;
    if (!m.options.model_root.empty()) {
      root = lexical_absolute(m.options.model_root);
    } else if (!layout.repository.empty()) {
      root = layout.repository;
    } else {
      root = fs::weakly_canonical(lexical_absolute(layout.models.front().second), ec).parent_path();
    }
    m.model_root = fs::weakly_canonical(root, ec);
    if (ec) throw ConfigError("--model-root " + root.string() + ": " + ec.message());
  }
  {
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%06x", rd() & 0xffffffu);
    m.request_id_prefix = buf;
  }
  m.models = std::make_unique<ModelRepository>(layout, m.model_root.string(), m.loader, m.options.batching,
                                               m.options.drift_window, m.options.device, m.metrics);
  m.register_metrics();
  m.refresh_page();
  m.drift = std::make_unique<DriftWorker>();

  http::HttpOptions ho;
  ho.host = m.options.host;
  ho.port = m.options.port;
  ho.max_connections = m.options.max_connections;
  ho.max_body_bytes = m.options.limits.max_body_bytes;
  ho.header_timeout_s = m.options.header_timeout_s;
  ho.body_timeout_s = m.options.body_timeout_s;
  ho.idle_timeout_s = m.options.keep_alive_timeout_s;
  ho.keep_alive_max = m.options.keep_alive_max;
  ho.workers = m.options.http_threads;
  http::Hooks hooks;
  hooks.handle = [this](http::Request&& req, http::Responder res) {
    impl_->requests_seen.fetch_add(1, std::memory_order_relaxed);
    try {
      impl_->handle(std::move(req), std::move(res), *this);
    } catch (const std::exception& e) {
      core::warn(std::string("serve: routing failed: ") + first_line(e.what()));
    }
  };
  hooks.error = [this](int status, const std::string& code, const std::string& message) {
    if (code == "body_too_large") {
      return impl_->error(status, code,
                          "request body exceeds " + std::to_string(impl_->options.limits.max_body_bytes) +
                              " bytes; send fewer or shorter texts per request");
    }
    if (status >= 500 && code != "too_many_connections" && code != "http_version_not_supported" &&
        code != "not_implemented") {
      return impl_->internal_error(code, "the server failed on this request", message);
    }
    auto r = impl_->error(status, code, message);
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    return r;
  };
  hooks.after_events = [this] { impl_->end_round(); };
  hooks.on_response = [this](const std::string&, const std::string& path, Clock::time_point started, int status) {
    const std::string route = route_label(path);
    impl_->metrics.requests->labels({route, std::to_string(status)}).inc();
    impl_->metrics.duration->labels({route}).observe(std::chrono::duration<double>(Clock::now() - started).count());
  };
  m.http = std::make_unique<http::HttpServer>(std::move(ho), std::move(hooks));
  m.index_extensions();
  std::size_t attached = 0;
  try {
    for (; attached < m.options.extensions.size(); ++attached) m.options.extensions[attached]->attach(*this, m.metrics.registry);
  } catch (...) {
    while (attached > 0) m.options.extensions[--attached]->detach();
    throw;
  }
}

Server::~Server() {
  shutdown();
  auto& m = *impl_;
  // Their background work may still swap models in: stopped before anything else.
  for (auto it = m.options.extensions.rbegin(); it != m.options.extensions.rend(); ++it) (*it)->detach();
  // Workers first (they may still be finishing a request), then the batchers they submit to.
  m.http.reset();
  if (m.models) m.models->stop();
  m.drift.reset();
  m.models.reset();
}

void Server::bind() {
  auto& m = *impl_;
  if (m.bound) return;
  m.http->bind();
  m.bound = true;
}

int Server::port() const { return impl_->http->port(); }

void Server::run() {
  bind();
  auto& m = *impl_;
  m.http->run();
  // Every accepted request has been answered; finish what is queued.
  m.models->stop();
}

void Server::begin_drain() {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.drain_mu);
  if (!m.draining) {
    m.drain_started = Clock::now();
    m.draining = true;
  }
}

void Server::shutdown() {
  begin_drain();
  auto& m = *impl_;
  if (!m.http) return;
  // Busy keep-alive connections need one more request to learn `Connection: close`; closing them
  // sooner could cut off a request a client sent just as the listener stopped.
  Clock::time_point started;
  {
    std::lock_guard<std::mutex> lock(m.drain_mu);
    started = m.drain_started;
  }
  if (m.bound) std::this_thread::sleep_until(started + kMinDrain);
  m.http->stop();
}

bool Server::draining() const { return impl_->draining; }

std::string Server::reload(const std::string& artifact_dir) {
  return load_model(impl_->models->default_name(), artifact_dir);
}

std::string Server::model_version() const {
  const ModelLease lease = impl_->models->acquire_default();
  return lease ? lease->model()->version() : std::string();
}

std::string Server::load_model(const std::string& name, const std::string& artifact_dir) {
  auto& m = *impl_;
  if (!valid_model_name(name)) {
    throw ConfigError("model name '" + name + "' cannot name a model in a URL (letters, digits, '.', '_', '-')");
  }
  std::string dir = artifact_dir;
  if (dir.empty()) dir = m.models->artifact_of(name);
  if (dir.empty()) dir = m.models->directory_of(name);
  return m.load_model(name, dir);
}

bool Server::unload_model(const std::string& name) {
  if (name == impl_->models->default_name()) {
    throw ConfigError("model '" + name + "' is the default model (/v1/predict) and stays loaded; reload it instead, "
                      "or restart with another --default-model");
  }
  return impl_->models->unload(name);
}

std::vector<std::string> Server::model_names() const {
  std::vector<std::string> out;
  for (const auto& s : impl_->models->loaded()) out.push_back(s->name());
  return out;
}

std::string Server::default_model() const { return impl_->models->default_name(); }

std::string Server::artifact_of(const std::string& name) const { return impl_->models->artifact_of(name); }

const RequestLimits& Server::limits() const { return impl_->options.limits; }

uint64_t Server::requests_seen() const { return impl_->requests_seen.load(std::memory_order_relaxed); }

}  // namespace kiln::serve
