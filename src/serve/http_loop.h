// Private to the HTTP server: the event loop and its per-connection state, shared by
// http_server.cpp (the loop and the public API), http_listener.cpp (bind, accept, the connection
// ceiling), http_connection.cpp (reading and framing requests), http_response.cpp (writing answers)
// and http_timeouts.cpp (deadlines, the sweep, stopping). Everything here runs on the loop thread
// except post(), stop() and error_response().
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http_parser.h"
#include "http_server.h"
#include "worker_pool.h"

namespace kiln::serve::http {

/// epoll ids of the listener and the wake-up eventfd; connections count from 2.
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr auto kSweepPeriod = std::chrono::milliseconds(100);
/// After stop(): how long a partly read request may still take to arrive.
constexpr auto kStopGrace = std::chrono::seconds(1);
/// After a response that closes the connection: how long unread input is drained before closing
/// (closing with unread data would reset the connection and could destroy the response in flight).
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 1u << 20;

inline Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

/// What a connection is doing: reading a request's headers, its body, waiting for the handler's
/// answer, or draining input before a lingering close.
enum class State { kHeaders, kBody, kBusy, kLinger };
enum class Phase { kNone, kIdle, kHeader, kBody, kWrite, kLinger };

struct Conn {
  int fd = -1;
  uint64_t id = 0;
  State state = State::kHeaders;
  std::string in;
  std::size_t pos = 0;          // first unconsumed byte of `in`
  std::size_t header_scan = 0;  // where the search for the end of the headers resumes
  std::string out;
  std::size_t out_pos = 0;
  uint32_t events = 0;
  Phase phase = Phase::kIdle;
  Clock::time_point deadline;
  bool request_started = false;
  Request req;
  Framing framing;
  ChunkedDecoder chunks;
  std::size_t served = 0;
  bool close_after = false;  // close once `out` is written
  bool in_process = false;
  bool dead = false;
  bool peer_eof = false;  // the client shut down its sending side; it may still read our answer
  std::size_t lingered = 0;
  // The request being answered (for on_response).
  std::string flight_method, flight_path;
  Clock::time_point flight_started;
  int flight_minor = 1;
};

class Loop : public std::enable_shared_from_this<Loop> {
 public:
  Loop(HttpOptions o, Hooks h)
      : opt(std::move(o)), hooks(std::move(h)), pool(std::make_unique<WorkerPool>(std::max(1, opt.workers))) {}
  ~Loop() {
    for (auto& [id, c] : conns) {
      if (c->fd >= 0) ::close(c->fd);
    }
    if (listen_fd >= 0) ::close(listen_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    if (ep >= 0) ::close(ep);
    if (reserve_fd >= 0) ::close(reserve_fd);
  }

  void bind();
  void run();
  void stop() {
    stopping = true;
    wake();
  }
  /// From a Responder: delivers now on the loop thread, else queues and wakes the loop.
  void post(uint64_t id, Response r) {
    if (std::this_thread::get_id() == loop_thread) {
      deliver(id, std::move(r));
      return;
    }
    bool need_wake = false;
    {
      std::lock_guard<std::mutex> lock(post_mu);
      posted.emplace_back(id, std::move(r));
      need_wake = !wake_pending;
      wake_pending = true;
    }
    if (need_wake) wake();
  }
  Response error_response(int status, const std::string& code, const std::string& message) {
    if (hooks.error) return hooks.error(status, code, message);
    Response r;
    r.status = status;
    r.content_type = "text/plain";
    r.body = code + ": " + message + "\n";
    return r;
  }

  HttpOptions opt;
  Hooks hooks;
  HttpStats stats;
  std::unique_ptr<WorkerPool> pool;
  int port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> running{false};

 private:
  void wake() {
    if (wake_fd < 0) return;
    const uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_fd, &one, sizeof(one));
  }
  void accept_all();
  void reject(int fd);
  void on_event(Conn& c, uint32_t ev);
  void read_some(Conn& c);
  void process(Conn& c);
  bool parse_headers(Conn& c, std::size_t end);
  bool read_body(Conn& c);
  void dispatch(Conn& c);
  void deliver(uint64_t id, Response r);
  void queue_response(Conn& c, const Response& r);
  void fail(Conn& c, int status, const std::string& code, const std::string& message);
  void flush(Conn& c);
  void finish_write(Conn& c);
  void update_events(Conn& c);
  void close_conn(Conn& c);
  void sweep(Clock::time_point now);
  void begin_stop(Clock::time_point now);
  void set_phase(Conn& c, Phase p, Clock::time_point now);

  int ep = -1, wake_fd = -1, listen_fd = -1, reserve_fd = -1;
  std::thread::id loop_thread;
  uint64_t next_id = 2;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::vector<uint64_t> graveyard;
  std::mutex post_mu;
  std::vector<std::pair<uint64_t, Response>> posted;
  bool wake_pending = false;
  bool stop_seen = false;
};

}  // namespace kiln::serve::http
