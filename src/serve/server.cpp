#include "kiln/serve/server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/gpu_metrics.h"
#include "kiln/serve/metrics.h"
#include "served_model.h"

namespace kiln::serve {

namespace {

using Clock = std::chrono::steady_clock;

/// Shortest time between the start of a drain and closing the listener.
constexpr std::chrono::milliseconds kMinDrain{200};

const char* const kKnownRoutes[] = {"/v1/predict", "/v1/model", "/healthz", "/readyz", "/metrics", "/v1/admin/reload"};

std::string route_label(const std::string& path) {
  for (const char* r : kKnownRoutes) {
    if (path == r) return r;
  }
  return "other";
}

const char* allowed_method(const std::string& path) {
  if (path == "/v1/predict" || path == "/v1/admin/reload") return "POST";
  for (const char* r : kKnownRoutes) {
    if (path == r) return "GET";
  }
  return nullptr;
}

void append_float(std::string& out, double v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.6g", v);
  out.append(buf, static_cast<std::size_t>(n));
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(1, b.size())]);
  return diff == 0;
}

// Per HTTP worker thread: when the current request started, and whether it still counts as
// arriving for the batcher.
thread_local Clock::time_point t_request_start;
thread_local bool t_arriving = false;

}  // namespace

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
  if (drift_window < 1) throw ConfigError("serve.drift_window must be >= 1, got 0");
  if (keep_alive_max < 1) throw ConfigError("serve.keep_alive_max must be >= 1, got 0");
  if (keep_alive_timeout_s < 1) {
    throw ConfigError("serve.keep_alive_timeout_s must be >= 1, got " + std::to_string(keep_alive_timeout_s));
  }
  if (limits.max_texts < 1 || limits.max_body_bytes < 16 || limits.max_text_bytes < 1 || limits.max_nesting < 2 ||
      limits.max_top_k < 1) {
    throw ConfigError("serve limits must be positive (max_texts >= 1, max_body_bytes >= 16, max_text_bytes >= 1, "
                      "max_nesting >= 2, max_top_k >= 1)");
  }
}

struct Server::Impl {
  ServerOptions options;
  std::string artifact_dir;
  std::shared_ptr<const ServedModel> model;  // std::atomic_load / atomic_store
  std::mutex reload_mu;
  std::atomic<bool> draining{false};
  std::mutex drain_mu;
  Clock::time_point drain_started;
  std::atomic<bool> bound{false};
  int port = 0;
  int listen_fd = -1;  // the listening socket, as httplib's socket-options hook saw it
  httplib::Server http;
  GpuMonitor gpu;

  MetricsRegistry registry;
  Counter* requests = nullptr;
  Counter* errors = nullptr;
  Counter* texts = nullptr;
  Counter* predictions = nullptr;
  Counter* reloads = nullptr;
  Histogram* duration = nullptr;
  Histogram* batch_size = nullptr;
  Histogram* confidence = nullptr;
  Gauge* queue_depth = nullptr;
  Gauge* model_info = nullptr;
  Gauge* drift_psi = nullptr;
  Gauge* drift_oov = nullptr;
  Gauge* drift_shift = nullptr;
  Gauge* drift_window = nullptr;
  Gauge* ready = nullptr;
  Gauge* gpu_util = nullptr;
  Gauge* gpu_mem_used = nullptr;
  Gauge* gpu_mem_total = nullptr;
  Gauge* gpu_temp = nullptr;

  std::unique_ptr<Batcher> batcher;

  // Drift runs off the request path on a bounded queue: under saturation it samples traffic.
  std::mutex drift_mu;
  std::condition_variable drift_cv;
  std::deque<std::pair<std::shared_ptr<const ServedModel>, std::vector<std::string>>> drift_queue;
  std::size_t drift_queued_texts = 0;
  bool drift_stop = false;
  std::thread drift_thread;

  std::shared_ptr<const ServedModel> current() const { return std::atomic_load(&model); }

  void register_metrics();
  void install_routes();
  void handle_predict(const httplib::Request& req, httplib::Response& res);
  void handle_reload(const httplib::Request& req, httplib::Response& res, Server& self);
  void reply_error(httplib::Response& res, int status, const std::string& code, const std::string& message);
  void queue_drift(const std::shared_ptr<const ServedModel>& m, const std::vector<std::string>& texts);
  void run_drift();
  void set_model_info(const ServedModel& m, double value);
};

void Server::Impl::register_metrics() {
  auto& r = registry;
  requests = &r.counter("kiln_requests_total", "HTTP requests answered, by route and status code.", {"route", "code"});
  errors = &r.counter("kiln_request_errors_total", "Requests refused or failed, by reason (the error code).", {"reason"});
  texts = &r.counter("kiln_texts_total", "Texts classified.");
  predictions = &r.counter("kiln_predictions_total", "Texts classified, by predicted label.", {"label"});
  reloads = &r.counter("kiln_model_reloads_total", "Model reloads, by result.", {"result"});
  duration = &r.histogram("kiln_request_duration_seconds", "Time from request start to response, by route.", {"route"},
                          latency_buckets());
  batch_size = &r.histogram("kiln_inference_batch_size", "Texts per forward pass (dynamic batching).", {},
                            power_of_two_buckets(static_cast<double>(std::max<std::size_t>(1024, options.batching.max_batch))));
  confidence = &r.histogram("kiln_prediction_confidence", "Top-1 probability of each prediction.", {},
                            probability_buckets());
  queue_depth = &r.gauge("kiln_queue_depth", "Texts waiting for an inference thread.");
  model_info = &r.gauge("kiln_model_info", "The loaded model (1) and models loaded before it (0).",
                        {"version", "family", "artifact"});
  drift_psi = &r.gauge("kiln_drift_psi", "Population stability index of live inputs vs the training profile, by signal.",
                       {"signal"});
  drift_oov = &r.gauge("kiln_drift_oov_rate", "Mean share of terms outside the training vocabulary, over the drift window.");
  drift_shift = &r.gauge("kiln_drift_top_feature_shift",
                         "Mean absolute change of the training set's top features' document shares, over the drift window.");
  drift_window = &r.gauge("kiln_drift_window_texts", "Texts in the drift window.");
  ready = &r.gauge("kiln_ready", "1 when a model is loaded and the server is not draining.");
  register_process_metrics(r);
  if (gpu.available()) {
    gpu_util = &r.gauge("kiln_gpu_utilization_ratio", "GPU busy share over the last NVML sample period.", {"gpu"});
    gpu_mem_used = &r.gauge("kiln_gpu_memory_used_bytes", "GPU memory in use.", {"gpu"});
    gpu_mem_total = &r.gauge("kiln_gpu_memory_total_bytes", "GPU memory in total.", {"gpu"});
    gpu_temp = &r.gauge("kiln_gpu_temperature_celsius", "GPU core temperature.", {"gpu"});
  }
  r.on_collect([this] {
    queue_depth->labels({}).set(batcher ? static_cast<double>(batcher->queue_depth()) : 0.0);
    ready->labels({}).set(draining ? 0.0 : 1.0);
    const auto m = current();
    if (m && m->has_drift()) {
      const auto d = m->drift();
      drift_psi->labels({"text_length"}).set(d.length_psi);
      drift_oov->labels({}).set(d.oov_rate);
      drift_shift->labels({}).set(d.top_feature_shift);
      drift_window->labels({}).set(static_cast<double>(d.window));
    }
    if (gpu_util) {
      for (const auto& g : gpu.sample()) {
        const std::string id = std::to_string(g.index);
        gpu_util->labels({id}).set(g.utilization_ratio);
        gpu_mem_used->labels({id}).set(g.memory_used_bytes);
        gpu_mem_total->labels({id}).set(g.memory_total_bytes);
        gpu_temp->labels({id}).set(g.temperature_celsius);
      }
    }
  });
}

void Server::Impl::set_model_info(const ServedModel& m, double value) {
  model_info->labels({m.version(), m.family(), m.dir()}).set(value);
}

void Server::Impl::reply_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(error_body(RequestError{status, code, message}), "application/json");
  errors->labels({code}).inc();
}

void Server::Impl::queue_drift(const std::shared_ptr<const ServedModel>& m, const std::vector<std::string>& texts) {
  constexpr std::size_t kMaxQueuedTexts = 256;
  if (!m->has_drift()) return;
  {
    std::lock_guard<std::mutex> lock(drift_mu);
    if (drift_stop || drift_queued_texts + texts.size() > kMaxQueuedTexts) return;  // saturated: sample
    drift_queued_texts += texts.size();
    drift_queue.emplace_back(m, texts);
  }
  drift_cv.notify_one();
}

void Server::Impl::run_drift() {
  for (;;) {
    std::pair<std::shared_ptr<const ServedModel>, std::vector<std::string>> item;
    {
      std::unique_lock<std::mutex> lock(drift_mu);
      drift_cv.wait(lock, [&] { return drift_stop || !drift_queue.empty(); });
      if (drift_queue.empty()) return;
      item = std::move(drift_queue.front());
      drift_queue.pop_front();
      drift_queued_texts -= item.second.size();
    }
    try {
      item.first->observe_drift(item.second);
    } catch (const std::exception& e) {
      core::warn(std::string("drift measurement failed: ") + e.what());
    }
  }
}

void Server::Impl::handle_predict(const httplib::Request& req, httplib::Response& res) {
  const auto done_arriving = [&] {
    if (t_arriving) {
      t_arriving = false;
      batcher->arrived();
    }
  };
  PredictRequest pr;
  RequestError err;
  if (!parse_predict_request(req.body, options.limits, pr, err)) {
    done_arriving();
    reply_error(res, err.status, err.code, err.message);
    return;
  }
  const auto m = current();
  const std::size_t n = pr.texts.size();
  const std::size_t k = std::min(pr.top_k, m->labels().size());
  queue_drift(m, pr.texts);
  auto future = batcher->submit(m, std::move(pr.texts), t_arriving);
  t_arriving = false;
  if (!future) {
    res.set_header("Retry-After", "1");
    reply_error(res, 503, "overloaded",
                "the inference queue is full (" + std::to_string(options.batching.max_queue) +
                    " texts); retry after 1 s, or raise --max-queue / add replicas");
    return;
  }
  BatchResult r = future->get();
  if (r.error) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(r.error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(res, 500, "inference_failed", "the model failed on this batch: " + what);
    return;
  }
  const auto& labels = m->labels();
  const std::size_t classes = r.classes;
  std::string body;
  body.reserve(64 + n * (48 + k * 40));
  body += "{\"predictions\":[";
  std::vector<std::size_t> order(classes);
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = r.probabilities.data() + i * classes;
    for (std::size_t c = 0; c < classes; ++c) order[c] = c;
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](std::size_t a, std::size_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
    if (i) body += ',';
    body += "{\"label\":";
    body += nlohmann::json(labels[order[0]]).dump();
    body += ",\"probability\":";
    append_float(body, p[order[0]]);
    body += ",\"top_k\":[";
    for (std::size_t j = 0; j < k; ++j) {
      if (j) body += ',';
      body += "{\"label\":";
      body += nlohmann::json(labels[order[j]]).dump();
      body += ",\"probability\":";
      append_float(body, p[order[j]]);
      body += '}';
    }
    body += "]}";
    confidence->labels({}).observe(p[order[0]]);
    predictions->labels({labels[order[0]]}).inc();
  }
  body += "],\"model_version\":";
  body += nlohmann::json(m->version()).dump();
  body += '}';
  texts->labels({}).inc(static_cast<double>(n));
  res.set_content(std::move(body), "application/json");
}

void Server::Impl::handle_reload(const httplib::Request& req, httplib::Response& res, Server& self) {
  std::string dir;
  if (!req.body.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(req.body);
    } catch (const nlohmann::json::exception& e) {
      reply_error(res, 400, "invalid_json", std::string("reload body is not JSON: ") + e.what() +
                                                "; send {\"artifact\": \"DIR\"} or an empty body");
      return;
    }
    if (!j.is_object() || (j.contains("artifact") && !j["artifact"].is_string()) ||
        std::any_of(j.items().begin(), j.items().end(), [](const auto& kv) { return kv.key() != "artifact"; })) {
      reply_error(res, 400, "invalid_request",
                  "reload body must be {\"artifact\": \"DIR\"} (or empty to reload the current artifact)");
      return;
    }
    if (j.contains("artifact")) dir = j["artifact"].get<std::string>();
  }
  const std::string previous = self.model_version();
  try {
    const std::string version = self.reload(dir);
    nlohmann::json out = {{"status", "reloaded"}, {"version", version}, {"previous_version", previous},
                          {"artifact", current()->dir()}};
    res.set_content(out.dump(), "application/json");
  } catch (const std::exception& e) {
    reply_error(res, 422, "reload_failed", std::string(e.what()) + "; the previous model keeps serving");
  }
}

void Server::Impl::install_routes() {
  http.new_task_queue = [n = options.http_threads] { return new httplib::ThreadPool(static_cast<std::size_t>(n)); };
  // Responses go out as headers + body writes: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms.
  http.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which lets a second server bind
  // the same port silently and split the traffic.
  http.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd = sock;
  });
  http.set_keep_alive_max_count(options.keep_alive_max);
  http.set_keep_alive_timeout(options.keep_alive_timeout_s);
  http.set_payload_max_length(options.limits.max_body_bytes);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_request_start = Clock::now();
    t_arriving = false;
    if (req.path == "/v1/predict" && req.method == "POST") {
      t_arriving = true;
      batcher->arriving();
    }
    if (draining) res.set_header("Connection", "close");
    if (req.path.rfind("/v1/admin/", 0) == 0 && !options.auth_token.empty()) {
      const std::string auth = req.get_header_value("Authorization");
      const std::string prefix = "Bearer ";
      if (auth.rfind(prefix, 0) != 0 || !constant_time_equal(auth.substr(prefix.size()), options.auth_token)) {
        res.set_header("WWW-Authenticate", "Bearer");
        reply_error(res, 401, "unauthorized",
                    auth.empty() ? "admin routes need the header `Authorization: Bearer <token>` (the server's --auth-token-file)"
                                 : "the bearer token does not match the server's --auth-token-file");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.Post("/v1/predict", [this](const httplib::Request& req, httplib::Response& res) { handle_predict(req, res); });
  http.Get("/v1/model", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(current()->info_json(), "application/json");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (draining) {
      res.status = 503;
      res.set_content("{\"status\":\"draining\"}", "application/json");
    } else {
      res.set_content("{\"status\":\"ready\",\"model_version\":" + nlohmann::json(current()->version()).dump() + "}",
                      "application/json");
    }
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.render(), "text/plain; version=0.0.4; charset=utf-8");
  });

  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (t_arriving) {
      t_arriving = false;
      batcher->arrived();
    }
    if (res.status == 404) {
      if (const char* allow = allowed_method(req.path)) {
        res.set_header("Allow", allow);
        reply_error(res, 405, "method_not_allowed",
                    req.method + " " + req.path + " is not supported; use " + allow + " " + req.path);
      } else {
        reply_error(res, 404, "not_found",
                    "no route " + req.path + "; routes: POST /v1/predict, GET /v1/model, GET /healthz, GET /readyz, "
                    "GET /metrics, POST /v1/admin/reload");
      }
    } else if (res.status == 413) {
      reply_error(res, 413, "body_too_large",
                  "request body exceeds " + std::to_string(options.limits.max_body_bytes) +
                      " bytes; send fewer or shorter texts per request");
    } else if (res.status == 400) {
      reply_error(res, 400, "bad_request",
                  "malformed HTTP request (check the request line and headers; a POST body needs Content-Length "
                  "or Transfer-Encoding: chunked)");
    } else {
      reply_error(res, res.status, "http_error", "HTTP status " + std::to_string(res.status));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(res, 500, "internal_error", what);
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (t_arriving) {
      t_arriving = false;
      batcher->arrived();
    }
    const std::string route = route_label(req.path);
    requests->labels({route, std::to_string(res.status)}).inc();
    duration->labels({route}).observe(std::chrono::duration<double>(Clock::now() - t_request_start).count());
  });
}

Server::Server(std::string artifact_dir, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  options.validate();
  auto& m = *impl_;
  m.options = std::move(options);
  m.artifact_dir = std::move(artifact_dir);
  if (m.options.inference_threads > 0) {
    core::set_threads(m.options.inference_threads);
    at::set_num_threads(m.options.inference_threads);
    core::set_blas_threads(m.options.inference_threads);  // OpenBLAS's pool is not LibTorch's
  }
  std::atomic_store(&m.model, std::shared_ptr<const ServedModel>(
                                  std::make_shared<ServedModel>(m.artifact_dir, m.options.drift_window, m.options.device)));
  m.register_metrics();
  m.set_model_info(*m.current(), 1.0);
  m.batcher = std::make_unique<Batcher>(m.options.batching, [this](std::size_t texts) {
    impl_->batch_size->labels({}).observe(static_cast<double>(texts));
  });
  m.drift_thread = std::thread([this] { impl_->run_drift(); });
  m.install_routes();
  m.http.Post("/v1/admin/reload", [this](const httplib::Request& req, httplib::Response& res) {
    impl_->handle_reload(req, res, *this);
  });
}

Server::~Server() {
  shutdown();
  auto& m = *impl_;
  if (m.batcher) m.batcher->stop();
  {
    std::lock_guard<std::mutex> lock(m.drift_mu);
    m.drift_stop = true;
  }
  m.drift_cv.notify_all();
  if (m.drift_thread.joinable()) m.drift_thread.join();
}

void Server::bind() {
  auto& m = *impl_;
  if (m.bound) return;
  bool ok = false;
  if (m.options.port == 0) {
    m.port = m.http.bind_to_any_port(m.options.host);
    ok = m.port > 0;
  } else {
    ok = m.http.bind_to_port(m.options.host, m.options.port);
    m.port = m.options.port;
  }
  if (!ok) {
    throw IoError("cannot listen on " + m.options.host + ":" + std::to_string(m.options.port) +
                  " (address in use, not a local address, or a privileged port); pick another --port or --host");
  }
  // httplib listens with a backlog of 5: a burst of new connections (a load balancer, wrk -c64)
  // overflows it and clients wait out a 1 s SYN retransmit. Listening again raises the backlog.
  if (m.listen_fd >= 0) ::listen(m.listen_fd, SOMAXCONN);
  m.bound = true;
}

int Server::port() const { return impl_->port; }

void Server::run() {
  bind();
  auto& m = *impl_;
  m.http.listen_after_bind();
  // Every accepted request has been answered (the HTTP pool joined); finish what is queued.
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
  if (m.http.is_running()) {
    // Busy keep-alive connections need one more request to learn `Connection: close`; closing them
    // sooner could cut off a request a client sent just as the listener stopped.
    Clock::time_point started;
    {
      std::lock_guard<std::mutex> lock(m.drain_mu);
      started = m.drain_started;
    }
    std::this_thread::sleep_until(started + kMinDrain);
  }
  m.http.stop();
}

bool Server::draining() const { return impl_->draining; }

std::string Server::reload(const std::string& artifact_dir) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> lock(m.reload_mu);
  const std::string dir = artifact_dir.empty() ? m.current()->dir() : artifact_dir;
  std::shared_ptr<const ServedModel> fresh;
  try {
    fresh = std::make_shared<ServedModel>(dir, m.options.drift_window, m.options.device);
  } catch (...) {
    m.reloads->labels({"failure"}).inc();
    throw;
  }
  const auto old = m.current();
  std::atomic_store(&m.model, fresh);
  m.artifact_dir = dir;
  m.set_model_info(*old, 0.0);
  m.set_model_info(*fresh, 1.0);
  m.reloads->labels({"success"}).inc();
  core::info("serve: model reloaded from " + dir + " (version " + fresh->version() + ", was " + old->version() + ")");
  return fresh->version();
}

std::string Server::model_version() const { return impl_->current()->version(); }

}  // namespace kiln::serve
