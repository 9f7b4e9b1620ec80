// `kiln serve`: an HTTP/1.1 model server over one artifact. Routes:
//   POST /v1/predict        {"texts": [...], "top_k": k} -> per text label, probability, top-k
//   GET  /v1/model          labels, featurizer and model specs, metrics, version
//   GET  /healthz           alive (200 while the process serves HTTP)
//   GET  /readyz            200 when a model is loaded and the server is not draining, else 503
//   GET  /metrics           Prometheus text format 0.0.4
//   POST /v1/admin/reload   {"artifact": "dir"} (optional) swaps in a new model atomically
// Every 4xx/5xx carries {"error": {"code", "message"}}. Concurrent predict requests are batched
// (batcher.h). Admin routes need `Authorization: Bearer <token>` when a token is set.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kiln/serve/batcher.h"
#include "kiln/serve/request.h"

namespace kiln::serve {

struct ServerOptions {
  /// Address to bind. Default 127.0.0.1 (loopback only); "0.0.0.0" for every interface.
  std::string host = "127.0.0.1";
  /// TCP port; 0 picks a free one (see Server::port()). Default 8080.
  int port = 8080;
  /// HTTP worker threads; each holds one keep-alive connection at a time, so this bounds the
  /// connections served concurrently (>= 1). Default 128.
  int http_threads = 128;
  /// Threads inside each forward pass (featurizing and LibTorch); 0 = keep the process-wide
  /// setting (--threads). Default 1: batches are small, and spare cores serve HTTP and run other
  /// inference workers; more threads here spin and steal them.
  int inference_threads = 1;
  /// Dynamic batching (max batch, max delay, queue size, inference workers).
  BatcherOptions batching;
  /// Request body, texts per request, text length, nesting and top_k limits.
  RequestLimits limits;
  /// Bearer token for the admin routes; empty = admin routes open (loopback use). Default empty.
  std::string auth_token;
  /// Texts in the drift window (>= 1). Default 2000.
  std::size_t drift_window = 2000;
  /// Where the model runs: "cpu" or "cuda[:N]". Default "cpu".
  std::string device = "cpu";
  /// Requests per keep-alive connection before the server closes it (>= 1). Default 100000.
  std::size_t keep_alive_max = 100000;
  /// Seconds an idle keep-alive connection stays open (>= 1). Default 5.
  int keep_alive_timeout_s = 5;

  /// Throws ConfigError naming the field and the value.
  void validate() const;
};

/// Thread-safe: reload(), begin_drain() and shutdown() may be called from any thread (signal
/// handlers' thread, admin requests) while run() serves.
class Server {
 public:
  /// Loads the artifact (ArtifactError when it is missing or corrupt) and validates the options.
  Server(std::string artifact_dir, ServerOptions options);
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
  std::string reload(const std::string& artifact_dir = "");
  /// The loaded model's version: its artifact's created_at and 8 hex digits of a manifest digest.
  [[nodiscard]] std::string model_version() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::serve
