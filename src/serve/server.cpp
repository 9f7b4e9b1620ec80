#include "kiln/serve/server.h"

#include <arpa/inet.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "drift_worker.h"
#include "http_server.h"
#include "json_body.h"
#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/gpu_metrics.h"
#include "kiln/serve/metrics.h"
#include "server_metrics.h"
#include "predict_response.h"
#include "served_model.h"
#include "v2_protocol.h"

namespace kiln::serve {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

/// Shortest time between the start of a drain and closing the listener.
constexpr std::chrono::milliseconds kMinDrain{200};

const char* const kRoutesHelp =
    "routes: POST /v1/predict, GET /v1/model, GET /healthz, GET /readyz, GET /metrics, POST /v1/admin/reload, "
    "GET /v2, GET /v2/health/live, GET /v2/health/ready, GET /v2/models/{name}, GET /v2/models/{name}/ready, "
    "POST /v2/models/{name}/infer";

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(1, b.size())]);
  return diff == 0;
}

/// The first line of an exception's text: LibTorch appends its C++ backtrace on the next lines.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string what_of(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown exception";
}

/// A path made absolute and normalized without touching the file system.
fs::path lexical_absolute(const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::current_path() / path;
  return path.lexically_normal();
}

bool is_under(const fs::path& path, const fs::path& root) {
  const auto rel = path.lexically_relative(root);
  if (rel.empty()) return false;
  const auto first = *rel.begin();
  return first != ".." && rel.is_relative();
}

/// A route of the v2 protocol's model endpoints: /v2/models/{name}[/versions/{version}][/ready|/infer].
struct V2ModelPath {
  std::string name, version, action;  // action: "", "ready", "infer"
};

bool parse_v2_model_path(const std::string& path, V2ModelPath& out) {
  const std::string prefix = "/v2/models/";
  if (path.rfind(prefix, 0) != 0) return false;
  std::vector<std::string> parts;
  std::size_t i = prefix.size();
  while (i <= path.size()) {
    const auto j = path.find('/', i);
    parts.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  if (parts.empty() || parts[0].empty()) return false;
  out = V2ModelPath{parts[0], "", ""};
  std::size_t k = 1;
  if (k + 1 < parts.size() + 1 && k < parts.size() && parts[k] == "versions") {
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

}  // namespace

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

void ServerOptions::validate() const {
  if (host.empty()) throw ConfigError("serve.host is empty; use 127.0.0.1 (loopback) or 0.0.0.0 (all interfaces)");
  if (port < 0 || port > 65535) throw ConfigError("serve.port must be in [0, 65535], got " + std::to_string(port));
  if (http_threads < 1 || http_threads > 4096) {
    throw ConfigError("serve.threads must be in [1, 4096], got " + std::to_string(http_threads));
  }
  if (inference_threads < 0) {
    throw ConfigError("serve.inference_threads must be >= 0 (0 = keep --threads), got " + std::to_string(inference_threads));
  }
  batching.validate();
  if (!auth_token.empty() && auth_token.size() < kMinAuthTokenChars) {
    throw ConfigError("serve.auth_token has " + std::to_string(auth_token.size()) + " characters; use at least " +
                      std::to_string(kMinAuthTokenChars) + ", or none to leave the admin routes open");
  }
  if (auth_token.empty() && !is_loopback_host(host)) {
    throw ConfigError("--host " + host +
                      " serves beyond this machine, and the admin routes (POST /v1/admin/reload) need a token "
                      "there: write one with `head -c 32 /dev/urandom | base64 > token && chmod 600 token` and pass "
                      "--auth-token-file token (or bind --host 127.0.0.1)");
  }
  if (drift_window < 1) throw ConfigError("serve.drift_window must be >= 1, got 0");
  if (keep_alive_max < 1) throw ConfigError("serve.keep_alive_max must be >= 1, got 0");
  if (!(keep_alive_timeout_s > 0) || keep_alive_timeout_s > 86400) {
    throw ConfigError("serve.keep_alive_timeout_s must be in (0, 86400], got " + std::to_string(keep_alive_timeout_s));
  }
  if (!(header_timeout_s > 0) || header_timeout_s > 3600) {
    throw ConfigError("serve.header_timeout_s must be in (0, 3600], got " + std::to_string(header_timeout_s));
  }
  if (!(body_timeout_s > 0) || body_timeout_s > 3600) {
    throw ConfigError("serve.body_timeout_s must be in (0, 3600], got " + std::to_string(body_timeout_s));
  }
  if (max_connections < 1) throw ConfigError("serve.max_connections must be >= 1, got 0");
  if (limits.max_texts < 1 || limits.max_body_bytes < 16 || limits.max_text_bytes < 1 || limits.max_nesting < 2 ||
      limits.max_top_k < 1) {
    throw ConfigError("serve limits must be positive (max_texts >= 1, max_body_bytes >= 16, max_text_bytes >= 1, "
                      "max_nesting >= 2, max_top_k >= 1)");
  }
}

struct Server::Impl {
  explicit Impl(ServerOptions o)
      : options(std::move(o)), metrics(options.batching.max_batch, gpu.available()) {}

  ServerOptions options;
  ModelLoader loader;
  std::string model_name;
  fs::path model_root;  // canonical
  std::shared_ptr<const ServedModel> model;  // std::atomic_load / atomic_store
  std::mutex reload_mu;
  std::atomic<bool> draining{false};
  std::mutex drain_mu;
  Clock::time_point drain_started;
  std::atomic<bool> bound{false};
  std::unique_ptr<http::HttpServer> http;
  GpuMonitor gpu;
  std::string request_id_prefix;
  std::atomic<uint64_t> request_seq{0};

  ServerMetrics metrics;

  std::unique_ptr<Batcher> batcher;

  std::unique_ptr<DriftWorker> drift;

  std::shared_ptr<const ServedModel> current() const { return std::atomic_load(&model); }

  void register_metrics();
  void set_model_info(const ServedModel& m, double value);

  // Answers (any thread).
  void send(http::Responder& r, http::Response resp) {
    if (draining) resp.close = true;
    r.send(std::move(resp));
  }
  http::Response json(std::string body, int status = 200) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  http::Response error(int status, const std::string& code, const std::string& message,
                       const std::string& request_id = "") {
    metrics.errors->labels({code}).inc();
    return json(error_body(RequestError{status, code, message, request_id}), status);
  }
  http::Response v2_error(int status, const std::string& code, const std::string& message) {
    metrics.errors->labels({code}).inc();
    return json(v2::error_body(message), status);
  }
  /// A 500 whose details go to the log only, under a request id the answer carries.
  http::Response internal_error(const std::string& code, const std::string& public_message, const std::string& detail,
                                bool v2 = false) {
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
  std::string next_request_id() {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%s-%08llx", request_id_prefix.c_str(),
                  static_cast<unsigned long long>(++request_seq));
    return buf;
  }

  // Routing: on the event loop; cheap routes answer there, the rest go to the workers.
  void handle(http::Request&& req, http::Responder res, Server& self);
  void announce_arrival(http::Request& req);
  static std::string route_label(const std::string& path);
  /// Runs `fn(req, res)` on a worker; an exception answers 500 with a request id.
  void offload(http::Request&& req, http::Responder res,
               std::function<void(Impl&, http::Request&, http::Responder&)> fn, bool v2 = false);

  /// The texts encoded by `m` on this thread (the prediction and drift share it); null on
  /// failure, with the exception's first line in `failure`.
  static std::shared_ptr<const BatchModel::Input> try_encode(const ServedModel& m, const std::vector<std::string>& texts,
                                                             std::string& failure);
  static std::shared_ptr<const BatchModel::Input> try_encode(const ServedModel& m, const PredictRequest& request,
                                                             std::string& failure);
  void predict(http::Request& req, http::Responder& res);
  void v2_infer(http::Request& req, http::Responder& res);
  void reload_route(http::Request& req, http::Responder& res, Server& self);
  void count_predictions(const ServedModel& m, const BatchResult& r, std::size_t n);
};

void Server::Impl::register_metrics() {
  metrics.registry.on_collect([this] {
    metrics.queue_depth->labels({}).set(batcher ? static_cast<double>(batcher->queue_depth()) : 0.0);
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
    const auto m = current();
    if (m && m->has_drift()) {
      const auto d = m->drift();
      metrics.drift_psi->labels({"text_length"}).set(d.length_psi);
      metrics.drift_oov->labels({}).set(d.oov_rate);
      metrics.drift_shift->labels({}).set(d.top_feature_shift);
      metrics.drift_window->labels({}).set(static_cast<double>(d.window));
      if (m->reads_images()) {
        metrics.drift_psi->labels({"image_intensity"}).set(d.intensity_psi);
        metrics.drift_psi->labels({"image_size"}).set(d.size_psi);
        metrics.drift_intensity->labels({}).set(d.mean_intensity);
      }
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

void Server::Impl::set_model_info(const ServedModel& m, double value) {
  metrics.model_info->labels({m.version(), m.family(), m.dir()}).set(value);
}

std::string Server::Impl::route_label(const std::string& path) {
  static const char* const kKnown[] = {"/v1/predict", "/v1/model", "/healthz",      "/readyz",
                                       "/metrics",    "/v1/admin/reload", "/v2", "/v2/health/live",
                                       "/v2/health/ready"};
  for (const char* r : kKnown) {
    if (path == r) return r;
  }
  V2ModelPath v;
  if (parse_v2_model_path(path, v)) {
    return v.action.empty() ? "/v2/models/{name}" : "/v2/models/{name}/" + v.action;
  }
  return "other";
}

void Server::Impl::announce_arrival(http::Request& req) {
  // The request is read and about to be parsed and encoded on a worker: a batch may wait
  // (max_delay_ms) for it. Counted from here, not from its headers, so a client that sends its
  // body slowly never holds batches back.
  batcher->arriving();
  Batcher* b = batcher.get();
  req.guard = http::ScopeGuard([b] { b->arrived(); });
}

void Server::Impl::offload(http::Request&& req, http::Responder res,
                           std::function<void(Impl&, http::Request&, http::Responder&)> fn, bool v2) {
  auto task = std::make_shared<std::pair<http::Request, http::Responder>>(std::move(req), std::move(res));
  http->offload([this, task, fn = std::move(fn), v2] {
    auto& [rq, rs] = *task;
    try {
      fn(*this, rq, rs);
    } catch (const std::exception& e) {
      send(rs, internal_error("internal_error", "the server failed on this request",
                              rq.method + " " + rq.path + ": " + first_line(e.what()), v2));
    } catch (...) {
      send(rs, internal_error("internal_error", "the server failed on this request",
                              rq.method + " " + rq.path + ": unknown exception", v2));
    }
  });
}

void Server::Impl::handle(http::Request&& req, http::Responder res, Server& self) {
  const std::string& path = req.path;
  const std::string& method = req.method;
  auto method_not_allowed = [&](const char* allow) {
    auto r = error(405, "method_not_allowed", method + " " + path + " is not supported; use " + allow + " " + path);
    r.headers.emplace_back("Allow", allow);
    send(res, std::move(r));
  };
  if (path.rfind("/v1/admin/", 0) == 0 && !options.auth_token.empty()) {
    const std::string* auth = req.header("authorization");
    const std::string prefix = "Bearer ";
    if (!auth || auth->rfind(prefix, 0) != 0 || !constant_time_equal(auth->substr(prefix.size()), options.auth_token)) {
      auto r = error(401, "unauthorized",
                     !auth ? "admin routes need the header `Authorization: Bearer <token>` (the server's --auth-token-file)"
                           : "the bearer token does not match the server's --auth-token-file");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      send(res, std::move(r));
      return;
    }
  }
  if (path == "/v1/predict") {
    if (method != "POST") return method_not_allowed("POST");
    announce_arrival(req);
    return offload(std::move(req), std::move(res), [](Impl& s, http::Request& q, http::Responder& r) { s.predict(q, r); });
  }
  if (path == "/v1/admin/reload") {
    if (method != "POST") return method_not_allowed("POST");
    return offload(std::move(req), std::move(res),
                   [&self](Impl& s, http::Request& q, http::Responder& r) { s.reload_route(q, r, self); });
  }
  if (path == "/healthz") {
    if (method != "GET") return method_not_allowed("GET");
    return send(res, json("{\"status\":\"ok\"}"));
  }
  if (path == "/readyz") {
    if (method != "GET") return method_not_allowed("GET");
    if (draining) return send(res, json("{\"status\":\"draining\"}", 503));
    return send(res, json("{\"status\":\"ready\",\"model_version\":" + nlohmann::json(current()->version()).dump() + "}"));
  }
  if (path == "/v1/model") {
    if (method != "GET") return method_not_allowed("GET");
    return send(res, json(current()->info_json()));
  }
  if (path == "/metrics") {
    if (method != "GET") return method_not_allowed("GET");
    return offload(std::move(req), std::move(res), [](Impl& s, http::Request&, http::Responder& r) {
      http::Response m;
      m.content_type = "text/plain; version=0.0.4; charset=utf-8";
      m.body = s.metrics.registry.render();
      s.send(r, std::move(m));
    });
  }
  // The Open Inference Protocol.
  if (path == "/v2" || path == "/v2/health/live" || path == "/v2/health/ready") {
    if (method != "GET") return method_not_allowed("GET");
    if (path == "/v2") return send(res, json(v2::server_metadata()));
    // Health answers are the status code alone, with an empty body (the protocol's "Health").
    if (path == "/v2/health/live") return send(res, json(""));
    if (draining) return send(res, v2_error(400, "not_ready", "the server is draining"));
    return send(res, json(""));
  }
  V2ModelPath v;
  if (parse_v2_model_path(path, v)) {
    const auto m = current();
    if (v.name != model_name) {
      return send(res, v2_error(404, "model_not_found",
                                "unknown model '" + v.name + "'; this server serves '" + model_name + "'"));
    }
    if (!v.version.empty() && v.version != m->version()) {
      return send(res, v2_error(404, "model_not_found",
                                "unknown version '" + v.version + "' of model '" + v.name + "'; the served version is '" +
                                    m->version() + "'"));
    }
    if (v.action == "infer") {
      if (method != "POST") return method_not_allowed("POST");
      announce_arrival(req);
      return offload(
          std::move(req), std::move(res), [](Impl& s, http::Request& q, http::Responder& r) { s.v2_infer(q, r); }, true);
    }
    if (method != "GET") return method_not_allowed("GET");
    if (v.action == "ready") {
      if (draining) return send(res, v2_error(400, "not_ready", "model '" + v.name + "' is not ready: the server is draining"));
      return send(res, json(""));
    }
    return send(res, json(v2::model_metadata(model_name, m->version(), m->labels().size(), m->reads_text(),
                                             m->reads_images())));
  }
  send(res, error(404, "not_found", "no route " + method + " " + path + "; " + kRoutesHelp));
}

void Server::Impl::count_predictions(const ServedModel& m, const BatchResult& r, std::size_t n) {
  const auto& labels = m.labels();
  const std::size_t classes = r.classes;
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = r.probabilities.data() + i * classes;
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c) {
      if (p[c] > p[best]) best = c;
    }
    metrics.confidence->labels({}).observe(p[best]);
    metrics.predictions->labels({labels[best]}).inc();
  }
  metrics.texts->labels({}).inc(static_cast<double>(n));
}

std::shared_ptr<const BatchModel::Input> Server::Impl::try_encode(const ServedModel& m,
                                                                  const std::vector<std::string>& texts,
                                                                  std::string& failure) {
  try {
    return m.encode(texts);
  } catch (const std::exception& e) {
    failure = first_line(e.what());
  } catch (...) {
    failure = "unknown exception";
  }
  return nullptr;
}

std::shared_ptr<const BatchModel::Input> Server::Impl::try_encode(const ServedModel& m, const PredictRequest& request,
                                                                  std::string& failure) {
  try {
    return m.encode(request);
  } catch (const std::exception& e) {
    failure = first_line(e.what());
  } catch (...) {
    failure = "unknown exception";
  }
  return nullptr;
}

void Server::Impl::predict(http::Request& req, http::Responder& res) {
  PredictRequest pr;
  RequestError err;
  if (!parse_predict_request(req.body, options.limits, pr, err)) {
    req.guard = {};  // no longer arriving
    return send(res, error(err.status, err.code, err.message));
  }
  const auto m = current();
  if (!m->check_inputs(pr, options.limits, err)) {
    req.guard = {};  // no longer arriving
    return send(res, error(err.status, err.code, err.message));
  }
  const std::size_t n = pr.size();
  const std::size_t k = std::min(pr.top_k, m->labels().size());
  auto shared = std::make_shared<http::Responder>(std::move(res));
  std::string failure;
  auto encoded = try_encode(*m, pr, failure);
  if (!encoded) {
    req.guard = {};  // no longer arriving
    return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                        "POST /v1/predict: encoding the inputs failed: " + failure));
  }
  drift->offer(m, pr.texts, encoded, pr.images);
  const bool was_arriving = req.guard.release();
  const bool queued = batcher->submit_encoded(m, std::move(encoded), n, was_arriving, [this, m, n, k, shared](BatchResult r) {
    if (r.error) {
      return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                          "POST /v1/predict: the model failed on a batch of " +
                                              std::to_string(r.batch_texts) + " texts: " + first_line(what_of(r.error))));
    }
    count_predictions(*m, r, n);
    send(*shared, json(predict_response(m->labels(), m->version(), r.probabilities, n, k)));
  });
  if (!queued) {
    auto resp = error(503, "overloaded",
                      "the inference queue is full (" + std::to_string(options.batching.max_queue) +
                          " texts); retry after 1 s, or raise --max-queue / add replicas");
    resp.headers.emplace_back("Retry-After", "1");
    send(*shared, std::move(resp));
  }
}

void Server::Impl::v2_infer(http::Request& req, http::Responder& res) {
  v2::InferRequest ir;
  RequestError err;
  std::optional<std::size_t> json_bytes;
  if (const std::string* h = req.header("inference-header-content-length")) {
    if (h->empty() || h->size() > 18 || !std::all_of(h->begin(), h->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      req.guard = {};
      return send(res, v2_error(400, "invalid_request", "Inference-Header-Content-Length must be a byte count"));
    }
    json_bytes = std::stoull(*h);
  }
  if (!v2::parse_infer_request(req.body, options.limits, ir, err, json_bytes)) {
    req.guard = {};
    return send(res, v2_error(err.status, err.code, err.message));
  }
  const auto m = current();
  PredictRequest inputs;
  inputs.texts = std::move(ir.texts);
  inputs.images = std::move(ir.images);
  ir.texts.clear();
  ir.images.clear();
  if (!m->check_inputs(inputs, options.limits, err, true)) {
    req.guard = {};
    return send(res, v2_error(err.status, err.code, err.message));
  }
  const std::size_t n = inputs.size();
  auto shared = std::make_shared<http::Responder>(std::move(res));
  const std::string where = "POST /v2/models/" + model_name + "/infer";
  std::string failure;
  auto encoded = try_encode(*m, inputs, failure);
  if (!encoded) {
    req.guard = {};  // no longer arriving
    return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                        where + ": encoding the texts failed: " + failure, true));
  }
  drift->offer(m, inputs.texts, encoded, inputs.images);  // the response needs only the outputs asked for
  auto request = std::make_shared<v2::InferRequest>(std::move(ir));
  const bool was_arriving = req.guard.release();
  const bool queued =
      batcher->submit_encoded(m, std::move(encoded), n, was_arriving, [this, m, n, shared, request, where](BatchResult r) {
        if (r.error) {
          return send(*shared, internal_error("inference_failed", "the model failed on this request",
                                              where + ": the model failed on a batch of " + std::to_string(r.batch_texts) +
                                                  " texts: " + first_line(what_of(r.error)),
                                              true));
        }
        count_predictions(*m, r, n);
        send(*shared, json(v2::infer_response(model_name, m->version(), *request, r.probabilities, m->labels())));
      });
  if (!queued) {
    auto resp = v2_error(503, "overloaded",
                         "the inference queue is full (" + std::to_string(options.batching.max_queue) +
                             " texts); retry after 1 s");
    resp.headers.emplace_back("Retry-After", "1");
    send(*shared, std::move(resp));
  }
}

void Server::Impl::reload_route(http::Request& req, http::Responder& res, Server& self) {
  std::string dir;
  const std::string hint = "send {\"artifact\": \"DIR\"} or an empty body";
  if (!req.body.empty()) {
    nlohmann::json j;
    RequestError err;
    if (!parse_json_body(req.body, j, err, hint)) return send(res, error(400, "invalid_json", err.message));
    if (!j.is_object() || (j.contains("artifact") && !j["artifact"].is_string()) ||
        std::any_of(j.items().begin(), j.items().end(), [](const auto& kv) { return kv.key() != "artifact"; })) {
      return send(res, error(400, "invalid_request",
                             "reload body must be {\"artifact\": \"DIR\"} (or empty to reload the current artifact)"));
    }
    if (j.contains("artifact")) dir = j["artifact"].get<std::string>();
  }
  if (!dir.empty()) {
    // Decide on the path's text first: nothing outside the root is ever opened or stat'ed, so the
    // answer says nothing about what exists there. Then resolve symbolic links inside the root.
    const std::string refusal = "reload loads artifacts under the server's --model-root " + model_root.string() +
                                " only; copy the artifact there or restart with another --model-root";
    const fs::path lexical = lexical_absolute(dir);
    if (!is_under(lexical, model_root)) return send(res, error(403, "forbidden", refusal));
    std::error_code ec;
    const fs::path resolved = fs::weakly_canonical(lexical, ec);
    if (ec || !is_under(resolved, model_root)) return send(res, error(403, "forbidden", refusal));
    dir = resolved.string();
  }
  const std::string previous = self.model_version();
  try {
    const std::string version = self.reload(dir);
    nlohmann::json out = {{"status", "reloaded"}, {"version", version}, {"previous_version", previous},
                          {"artifact", current()->dir()}};
    send(res, json(out.dump()));
  } catch (const Error& e) {
    // Kiln's own messages (which file, what is wrong) for an artifact under the model root.
    send(res, error(422, "reload_failed", first_line(e.what()) + "; the previous model keeps serving"));
  } catch (const std::exception& e) {
    send(res, internal_error("reload_failed", "the artifact did not load; the previous model keeps serving",
                             "reload of " + dir + ": " + first_line(e.what())));
  }
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
  std::atomic_store(&m.model, m.loader(artifact_dir, m.options.drift_window, m.options.device));
  {
    std::error_code ec;
    const fs::path served = fs::weakly_canonical(lexical_absolute(artifact_dir), ec);
    m.model_name = m.options.model_name.empty() ? served.filename().string() : m.options.model_name;
    const fs::path root = m.options.model_root.empty() ? served.parent_path() : lexical_absolute(m.options.model_root);
    m.model_root = fs::weakly_canonical(root, ec);
    if (ec) throw ConfigError("--model-root " + root.string() + ": " + ec.message());
  }
  {
    std::random_device rd;
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%06x", rd() & 0xffffffu);
    m.request_id_prefix = buf;
  }
  m.register_metrics();
  m.set_model_info(*m.current(), 1.0);
  m.batcher = std::make_unique<Batcher>(m.options.batching, [this](std::size_t texts) {
    impl_->metrics.batch_size->labels({}).observe(static_cast<double>(texts));
  });
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
  hooks.on_response = [this](const std::string&, const std::string& path, Clock::time_point started, int status) {
    const std::string route = Impl::route_label(path);
    impl_->metrics.requests->labels({route, std::to_string(status)}).inc();
    impl_->metrics.duration->labels({route}).observe(std::chrono::duration<double>(Clock::now() - started).count());
  };
  m.http = std::make_unique<http::HttpServer>(std::move(ho), std::move(hooks));
}

Server::~Server() {
  shutdown();
  auto& m = *impl_;
  // Workers first (they may still be finishing a request), then the batcher they submit to.
  m.http.reset();
  if (m.batcher) m.batcher->stop();
  m.drift.reset();
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
  m.batcher->stop();
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
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.reload_mu);
  const std::string dir = artifact_dir.empty() ? m.current()->dir() : artifact_dir;
  std::shared_ptr<const ServedModel> fresh;
  try {
    fresh = m.loader(dir, m.options.drift_window, m.options.device);
  } catch (...) {
    m.metrics.reloads->labels({"failure"}).inc();
    throw;
  }
  const auto old = m.current();
  std::atomic_store(&m.model, fresh);
  m.set_model_info(*old, 0.0);
  m.set_model_info(*fresh, 1.0);
  m.metrics.reloads->labels({"success"}).inc();
  core::info("serve: model reloaded from " + dir + " (version " + fresh->version() + ", was " + old->version() + ")");
  return fresh->version();
}

std::string Server::model_version() const { return impl_->current()->version(); }

}  // namespace kiln::serve
