// The server's I/O core: one epoll loop owns every connection (non-blocking sockets), parses
// HTTP/1.1 requests (Content-Length and chunked bodies, Expect: 100-continue, keep-alive,
// pipelining one request at a time), enforces header/body/idle/write timeouts and a connection
// ceiling, and hands each complete request to a handler. No thread per connection: a slow or idle
// client costs a socket and a buffer, never a thread, so it cannot starve the others.
//
//   HttpServer http(options, hooks);          // hooks.handle runs on the loop thread: answer cheap
//   http.bind();                              // routes at once, http.offload() the rest
//   std::thread t([&] { http.run(); });
//   ... http.stop(); t.join();                // stops accepting, answers what was accepted
//
// Thread-safety: stop(), offload(), stats and Responder::send may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::serve::http {

using Clock = std::chrono::steady_clock;

/// Runs a function once when destroyed unless release()d: ties bookkeeping (a request announced to
/// the batcher) to a request's lifetime instead of to a thread.
class ScopeGuard {
 public:
  ScopeGuard() = default;
  explicit ScopeGuard(std::function<void()> fn) : fn_(std::move(fn)) {}
  ScopeGuard(ScopeGuard&& o) noexcept : fn_(std::exchange(o.fn_, nullptr)) {}
  ScopeGuard& operator=(ScopeGuard&& o) noexcept {
    if (this != &o) {
      fire();
      fn_ = std::exchange(o.fn_, nullptr);
    }
    return *this;
  }
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  ~ScopeGuard() { fire(); }
  /// True when armed; disarms without running.
  bool release() noexcept { return static_cast<bool>(std::exchange(fn_, nullptr)); }
  [[nodiscard]] bool armed() const noexcept { return static_cast<bool>(fn_); }

 private:
  void fire() noexcept {
    if (auto f = std::exchange(fn_, nullptr)) f();
  }
  std::function<void()> fn_;
};

struct Request {
  std::string method;  ///< as sent ("GET", "POST", ...)
  std::string target;  ///< request target as sent ("/v2/models/a%20b/infer?x=1")
  std::string path;    ///< target before '?', percent-decoded
  std::string query;   ///< after '?', raw
  int minor_version = 1;  ///< HTTP/1.minor
  /// Header names lower-cased, values trimmed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Clock::time_point started;  ///< first byte of this request arrived
  /// Set by the handler for bookkeeping tied to this request; runs when the request is destroyed.
  ScopeGuard guard;

  /// The first value of header `lower_name`, or nullptr.
  [[nodiscard]] const std::string* header(std::string_view lower_name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Extra headers (not Content-Type, Content-Length, Connection).
  std::vector<std::pair<std::string, std::string>> headers;
  /// Close the connection after this response.
  bool close = false;
};

class Loop;

/// Answers one request, once, from any thread. Dropping it unsent answers 500 (a handler bug).
class Responder {
 public:
  Responder() = default;
  Responder(std::shared_ptr<Loop> loop, uint64_t connection);
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();
  void send(Response response);

 private:
  std::shared_ptr<Loop> loop_;
  uint64_t connection_ = 0;
};

struct HttpOptions {
  /// Address to bind ("127.0.0.1", "0.0.0.0", "::1", a host name). Default loopback.
  std::string host = "127.0.0.1";
  /// TCP port; 0 picks a free one. Default 8080.
  int port = 8080;
  /// Open connections beyond which a new one is answered 503 and closed at once. Default 10000.
  std::size_t max_connections = 10000;
  /// Request line + headers, bytes (431 beyond). Default 16 KiB.
  std::size_t max_header_bytes = 16384;
  /// Request body, bytes (413 beyond). Default 8 MiB.
  std::size_t max_body_bytes = 8u << 20;
  /// Seconds from a request's first byte to the end of its headers. Default 10.
  double header_timeout_s = 10;
  /// Seconds from the end of the headers to the end of the body. Default 30.
  double body_timeout_s = 30;
  /// Seconds a keep-alive connection may wait, idle, for its next request. Default 5.
  double idle_timeout_s = 5;
  /// Seconds a response may take to be written out (a client that does not read). Default 30.
  double write_timeout_s = 30;
  /// Requests per connection before it is closed. Default 100000.
  std::size_t keep_alive_max = 100000;
  /// Threads that run offload()ed work (parsing, encoding, reloads). Default 4.
  int workers = 4;
};

struct HttpStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};  ///< over max_connections (or out of file descriptors)
  std::atomic<uint64_t> header_timeouts{0};
  std::atomic<uint64_t> body_timeouts{0};
  std::atomic<uint64_t> idle_timeouts{0};
  std::atomic<uint64_t> write_timeouts{0};
  std::atomic<int64_t> open{0};
};

struct Hooks {
  /// On the loop thread with each complete request. Answer through the responder, now or later,
  /// from any thread; offload() anything slower than a few microseconds.
  std::function<void(Request&&, Responder)> handle;
  /// The answer to a malformed request the HTTP layer refuses itself (400, 408, 413, 431, 500).
  std::function<Response(int status, const std::string& code, const std::string& message)> error;
  /// On the loop thread after each round of ready events (every request of the round handled):
  /// for work handlers deferred to the round's end, e.g. one batch for the round's requests.
  std::function<void()> after_events;
  /// After each response is queued for writing: method, path, started, status (metrics).
  std::function<void(const std::string& method, const std::string& path, Clock::time_point started, int status)>
      on_response;
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, Hooks hooks);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and listens. Throws IoError naming the address and the fix.
  void bind();
  [[nodiscard]] int port() const;
  /// Serves until stop(): then stops accepting, closes idle connections, gives partial requests a
  /// second to complete, answers every request already read, and returns.
  void run();
  /// Thread-safe; idempotent. Before run(): run() returns at once.
  void stop();
  /// Runs `fn` on a worker thread.
  void offload(std::function<void()> fn);

  [[nodiscard]] const HttpStats& stats() const;
  [[nodiscard]] const HttpOptions& options() const { return options_; }

 private:
  HttpOptions options_;
  std::shared_ptr<Loop> loop_;
};

/// "Not Found" for 404 and so on ("Unknown" for codes it does not know).
[[nodiscard]] const char* reason_phrase(int status);

}  // namespace kiln::serve::http
