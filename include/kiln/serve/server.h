// `kiln serve`: an HTTP/1.1 model server over one artifact or a model repository (a directory with
// one artifact per subdirectory, as Triton's; each model named, with its own batcher). Routes:
//   POST /v1/predict        {"texts": [...], "top_k": k} -> per text label, probability, top-k (default model)
//   POST /v1/models/{name}/predict   the same for model {name}; GET /v1/models/{name}: its /v1/model
//   GET  /v1/models         the loaded models
//   GET  /v1/model          labels, featurizer and model specs, metrics, version (default model)
//   GET  /healthz           alive (200 while the process serves HTTP)
//   GET  /readyz            200 when the default model is loaded and the server is not draining, else 503
//   GET  /metrics           Prometheus text format 0.0.4
//   POST /v1/admin/reload   {"model": name, "artifact": "dir"} (both optional; the artifact under the
//                           model root) swaps in a new artifact; /v1/admin/load, /v1/admin/unload
//   GET  / , /index.html    the default model's page (ServerOptions::home_page), when one is set
//   and the routes of ServerOptions::extensions (extension.h; e.g. POST /v1/feedback)
// and the Open Inference Protocol (KServe v2): GET /v2, /v2/health/live, /v2/health/ready,
// /v2/models/{name}[/versions/{v}], .../ready, POST .../infer (v2_protocol.h), and Triton's model
// repository extension: POST /v2/repository/index, /v2/repository/models/{name}/load, .../unload.
// Every 4xx/5xx carries {"error": {"code", "message"}} ({"error": "message"} on /v2); a 5xx adds a
// request_id that the server's log line with the details carries too. Connections are served by one
// event loop (http_server.h); concurrent predict requests are batched (batcher.h). Admin routes need
// `Authorization: Bearer <token>` when a token is set, and a token is required off loopback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/serve/batcher.h"
#include "kiln/serve/extension.h"
#include "kiln/serve/request.h"

namespace kiln::serve {

class ServedModel;
/// Loads an artifact for serving (tests substitute models that fail on purpose).
using ModelLoader =
    std::function<std::shared_ptr<const ServedModel>(const std::string& artifact_dir, std::size_t drift_window,
                                                     const std::string& device)>;

/// True for 127.0.0.0/8, ::1 and "localhost".
[[nodiscard]] bool is_loopback_host(const std::string& host);

struct ServerOptions {
  /// Address to bind. Default 127.0.0.1 (loopback only); "0.0.0.0" for every interface.
  std::string host = "127.0.0.1";
  /// TCP port; 0 picks a free one (see Server::port()). Default 8080.
  int port = 8080;
  /// Threads that parse and encode requests and run admin work; connections need no thread of
  /// their own (one event loop serves them all). >= 1. Default 4.
  int http_threads = 4;
  /// Open connections beyond which a new one gets 503 and is closed (kiln_connections_rejected_total).
  /// >= 1. Default 10000.
  std::size_t max_connections = 10000;
  /// Seconds from a request's first byte to the end of its headers (408 beyond). Default 10.
  double header_timeout_s = 10;
  /// Seconds from the end of a request's headers to the end of its body (408 beyond). Default 30.
  double body_timeout_s = 30;
  /// Name of a single served artifact's model; empty = the artifact directory's name (a repository's
  /// models are named by their subdirectories). Default empty.
  std::string model_name;
  /// The model of a repository that /v1/predict, /v1/model and /readyz serve; empty = the only one.
  /// Default empty.
  std::string default_model;
  /// Load and reload read only artifacts under this directory; empty = the repository, or the
  /// served artifact's parent. Default empty.
  std::string model_root;
  /// Threads inside each forward pass (featurizing and LibTorch); 0 = keep the process-wide
  /// setting (--threads). Default 1: batches are small, and spare cores serve HTTP and run other
  /// inference workers; more threads here spin and steal them.
  int inference_threads = 1;
  /// Dynamic batching (max batch, max delay, queue size, inference workers).
  BatcherOptions batching;
  /// Request body, texts per request, text length, nesting and top_k limits.
  RequestLimits limits;
  /// Bearer token for the admin routes; empty = admin routes open (only allowed on a loopback host).
  /// Default empty.
  std::string auth_token;
  /// Texts in the drift window (>= 1). Default 2000.
  std::size_t drift_window = 2000;
  /// The page GET / and GET /index.html answer: called with the artifact directory and the model's
  /// name when the server starts and after each reload; its HTML is cached until the next reload.
  /// Unset: those routes answer 404. `kiln serve` sets it to the model's report page
  /// (report::server_page) unless --no-page. Default unset.
  std::function<std::string(const std::string& artifact_dir, const std::string& model_name)> home_page;
  /// Where the model runs: "cpu" or "cuda[:N]". Default "cpu".
  std::string device = "cpu";
  /// Requests per keep-alive connection before the server closes it (>= 1). Default 100000.
  std::size_t keep_alive_max = 100000;
  /// Seconds an idle keep-alive connection stays open (> 0). Default 5.
  double keep_alive_timeout_s = 5;
  /// Routes, metrics and background work other modules add (extension.h), attached in this order
  /// once the models are loaded; no two may claim the same path or a built-in one. Default none.
  std::vector<std::shared_ptr<Extension>> extensions;

  /// Throws ConfigError naming the field and the value.
  void validate() const;
};

/// Thread-safe: reload(), begin_drain() and shutdown() may be called from any thread (signal
/// handlers' thread, admin requests) while run() serves.
class Server {
 public:
  /// Loads the artifact, or every artifact of the repository `artifact_dir` (ArtifactError naming the
  /// model when one is corrupt; ConfigError for a directory that is neither, or a repository with
  /// several models and no default_model), and validates the options.
  Server(std::string artifact_dir, ServerOptions options, ModelLoader loader = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds host:port. Throws IoError naming the address and the fix when it cannot.
  void bind();
  /// The bound port (after bind()).
  [[nodiscard]] int port() const;
  /// Serves until shutdown(); binds first if bind() was not called.
  void run();

  /// readyz turns 503 so load balancers stop sending; requests are still served.
  void begin_drain();
  /// Stops accepting connections, answers every request already accepted, then run() returns.
  void shutdown();
  [[nodiscard]] bool draining() const;

  /// Loads `artifact_dir` (empty: the current one again) and swaps it in atomically: requests
  /// already batched finish on the old model, later ones use the new one. On failure the old model
  /// keeps serving and the ArtifactError propagates. Returns the new model's version string.
  /// Trusted callers only (SIGHUP, tests): the HTTP route checks the model root first.
  std::string reload(const std::string& artifact_dir = "");
  /// The default model's version: its artifact's created_at and 8 hex digits of a manifest digest.
  [[nodiscard]] std::string model_version() const;

  /// Loads (or, when loaded, reloads) model `name` from `artifact_dir` (empty: its current directory,
  /// or the repository's NAME subdirectory). Throws as reload(); returns the version.
  std::string load_model(const std::string& name, const std::string& artifact_dir = "");
  /// Takes model `name` off the routes, answers every request it had accepted, then frees it. False
  /// when it is not loaded. Throws ConfigError for the default model.
  bool unload_model(const std::string& name);
  /// The loaded models' names, sorted; the default model's name.
  [[nodiscard]] std::vector<std::string> model_names() const;
  [[nodiscard]] std::string default_model() const;
  /// The directory model `name` was last loaded from (an artifact); empty when it is not loaded.
  [[nodiscard]] std::string artifact_of(const std::string& name) const;
  /// The request limits every route applies (ServerOptions::limits).
  [[nodiscard]] const RequestLimits& limits() const;
  /// Requests received so far (any route): background work can tell whether requests are arriving.
  [[nodiscard]] uint64_t requests_seen() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::serve
