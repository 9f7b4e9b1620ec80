// Private: the server's state and its route handlers, shared by server.cpp (routing, lifecycle),
// predict_routes.cpp (the model routes), admin_routes.cpp (reload, load, unload, the repository
// index) and extension_routes.cpp (routes other modules add).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "drift_worker.h"
#include "http_server.h"
#include "kiln/core/log.h"
#include "kiln/serve/gpu_metrics.h"
#include "kiln/serve/server.h"
#include "model_repository.h"
#include "server_metrics.h"
#include "v2_protocol.h"

namespace kiln::serve {

/// The first line of an exception's text: LibTorch appends its C++ backtrace on the next lines.
inline std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

struct Server::Impl {
  using Clock = std::chrono::steady_clock;

  explicit Impl(ServerOptions o) : options(std::move(o)), metrics(options.batching.max_batch, gpu.available()) {}

  ServerOptions options;
  std::atomic<uint64_t> requests_seen{0};  ///< requests the loop has handed to handle()
  ModelLoader loader;
  std::filesystem::path model_root;  // canonical
  std::atomic<bool> draining{false};
  std::mutex drain_mu;
  Clock::time_point drain_started;
  std::atomic<bool> bound{false};
  std::unique_ptr<http::HttpServer> http;
  GpuMonitor gpu;
  std::string request_id_prefix;
  std::atomic<uint64_t> request_seq{0};

  ServerMetrics metrics;
  std::unique_ptr<ModelRepository> models;
  std::unique_ptr<DriftWorker> drift;

  /// options.home_page's HTML for the default model (std::atomic_load / atomic_store); null when
  /// unset or when it failed (the log says why).
  std::shared_ptr<const std::string> page;
  /// Regenerates `page` for the default model (at start and after it was reloaded).
  void refresh_page();
  /// models->load(), then the page when `name` is the default model.
  std::string load_model(const std::string& name, const std::string& dir, std::string* previous = nullptr) {
    std::string version = models->load(name, dir, previous);
    if (name == models->default_name()) refresh_page();
    return version;
  }

  void register_metrics();

  // Answers (any thread).
  void send(http::Responder& r, http::Response resp) {
    if (draining) resp.close = true;
    r.send(std::move(resp));
  }
  static http::Response json(std::string body, int status = 200) {
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
                                bool v2 = false);
  std::string next_request_id() {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%s-%08llx", request_id_prefix.c_str(),
                  static_cast<unsigned long long>(++request_seq));
    return buf;
  }

  // Routing: on the event loop; cheap routes answer there, the rest go to the workers.
  void handle(http::Request&& req, http::Responder res, Server& self);
  /// The model routes of both APIs: /v1/predict, /v1/model(s), /v2/models/...; false for other paths.
  bool handle_model_route(http::Request& req, http::Responder& res);
  void announce_arrival(http::Request& req, const ModelSlot& slot);
  using RouteFn = std::function<void(Impl&, http::Request&, http::Responder&)>;
  /// Runs `fn(req, res)` on a worker; an exception answers 500 with a request id.
  void offload(http::Request&& req, http::Responder res, RouteFn fn, bool v2 = false);
  /// Runs `fn(req, res)` on this thread; an exception answers 500 with a request id.
  void guarded(http::Request& req, http::Responder& res, const RouteFn& fn, bool v2 = false);
  /// A predict or infer request for `lease`: when runs_here() says so, parsed on the event loop and
  /// kept for the round's batch (end_round()); else parsed and encoded on a worker and queued for
  /// an inference thread.
  void route_inference(http::Request&& req, http::Responder res, const ModelLease& lease, bool v2);
  /// Whether a request joins its event-loop round's batch: a text-only model whose forward passes
  /// measured cheap (Batcher::runs_inline) and a small body (kInlineBodyBytes), so that handing
  /// each request to a worker and then to an inference thread would cost more than the work.
  [[nodiscard]] bool runs_here(const http::Request& req, const ModelSlot& slot) const;
  /// A request parsed on the event loop, waiting for the end of its round.
  struct Deferred {
    std::vector<std::string> texts;
    std::function<void(BatchResult)> done;  ///< its rows of the round's batch (or the error)
    std::function<void()> overloaded;       ///< answers 503: the batcher's queue is full
  };
  /// The requests of this round for one model (one artifact: a reload mid-round starts another).
  struct RoundModel {
    ModelLease lease;
    std::shared_ptr<const ServedModel> model;
    std::vector<Deferred> requests;
  };
  /// Keeps `request` for the batch at the end of this round (event loop only).
  void defer(const ModelLease& lease, std::shared_ptr<const ServedModel> model, Deferred request);
  /// Hooks::after_events: hands the round's deferred requests to one worker, as one task.
  void end_round();
  /// On that worker: encodes a model's deferred texts together, offers them to drift once, and runs
  /// the batch on the same thread (Batcher::defer_here / run_here); each request gets its rows.
  void run_round(RoundModel& round_model);
  /// This round's deferred requests by model (event loop only).
  std::vector<RoundModel> round;
  void method_not_allowed(http::Request& req, http::Responder& res, const char* allow);
  /// `here`: on the event loop, batched at the round's end (runs_here()); else on a worker.
  void predict(http::Request& req, http::Responder& res, const ModelLease& lease, bool here = false);
  void v2_infer(http::Request& req, http::Responder& res, const ModelLease& lease, bool here = false);
  void count_predictions(const ModelSlot& slot, const ServedModel& m, const BatchResult& r, std::size_t n);
  /// The texts and top-1 labels of an answered request, to the extensions that watch predictions.
  void show_predictions(const std::string& model, const ServedModel& m, const BatchResult& r,
                        const std::vector<std::string>& texts);

  // Admin (admin_routes.cpp).
  /// Whether the request may use an admin route; answers 401 itself when not.
  bool authorized(const http::Request& req, http::Responder& res);
  /// POST /v1/admin/{reload,load,unload} and /v2/repository/...; false for other paths.
  bool handle_admin_route(http::Request& req, http::Responder& res);
  /// `dir` made canonical when it lies under the model root; empty when not (nothing outside the
  /// root is opened or stat'ed: the answer is the same whether it exists).
  [[nodiscard]] std::string under_model_root(const std::string& dir) const;
  void reload_route(http::Request& req, http::Responder& res);
  void load_route(http::Request& req, http::Responder& res, const std::string& name, bool v2);
  void unload_route(http::Request& req, http::Responder& res, const std::string& name, bool v2);
  void index_route(http::Request& req, http::Responder& res);

  // Extensions (extension_routes.cpp).
  /// ServerOptions::extensions by path (exact).
  std::map<std::string, Extension*> extension_routes;
  /// Indexes the extensions' routes (ConfigError for a path claimed twice or a built-in one).
  void index_extensions();
  /// Runs the extension that owns the path on a worker; false for other paths.
  bool handle_extension_route(http::Request& req, http::Responder& res);
};

}  // namespace kiln::serve
