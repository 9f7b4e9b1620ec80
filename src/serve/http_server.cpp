// The event loop (one thread, epoll) and the public face of the HTTP server: HttpServer and
// Responder. Accepting, reading, writing and timeouts live in http_listener.cpp,
// http_connection.cpp, http_response.cpp and http_timeouts.cpp (shared state: http_loop.h).
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http_loop.h"
#include "kiln/core/log.h"

namespace kiln::serve::http {

void Loop::run() {
  loop_thread = std::this_thread::get_id();
  running = true;
  std::vector<epoll_event> events(256);
  auto next_sweep = Clock::now() + kSweepPeriod;
  for (;;) {
    if (stopping && !stop_seen) begin_stop(Clock::now());
    if (stop_seen && conns.empty()) break;
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    if (n < 0 && errno != EINTR) {
      core::warn(std::string("serve: epoll_wait failed: ") + std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kListenerId) {
        accept_all();
      } else if (id == kWakeId) {
        uint64_t v;
        [[maybe_unused]] const auto r = ::read(wake_fd, &v, sizeof(v));
        std::vector<std::pair<uint64_t, Response>> batch;
        {
          std::lock_guard<std::mutex> lock(post_mu);
          batch.swap(posted);
          wake_pending = false;
        }
        for (auto& [cid, resp] : batch) deliver(cid, std::move(resp));
      } else {
        const auto it = conns.find(id);
        if (it != conns.end() && !it->second->dead) on_event(*it->second, events[i].events);
      }
    }
    if (n > 0 && hooks.after_events) {
      try {
        hooks.after_events();
      } catch (const std::exception& e) {
        core::warn(std::string("serve: deferred request work failed: ") + e.what());
      }
    }
    for (const uint64_t id : graveyard) conns.erase(id);
    graveyard.clear();
    const auto now = Clock::now();
    if (now >= next_sweep) {
      sweep(now);
      for (const uint64_t id : graveyard) conns.erase(id);
      graveyard.clear();
      next_sweep = now + kSweepPeriod;
    }
  }
  running = false;
}

Responder::Responder(std::shared_ptr<Loop> loop, uint64_t connection) : loop_(std::move(loop)), connection_(connection) {}

Responder& Responder::operator=(Responder&& o) noexcept {
  if (this != &o) {
    if (loop_) send(loop_->error_response(500, "internal_error", "the server dropped this request; please report it"));
    loop_ = std::move(o.loop_);
    connection_ = o.connection_;
  }
  return *this;
}

Responder::~Responder() {
  if (loop_) {
    try {
      send(loop_->error_response(500, "internal_error", "the server dropped this request; please report it"));
    } catch (...) {
    }
  }
}

void Responder::send(Response response) {
  if (!loop_) return;
  auto loop = std::move(loop_);
  loop->post(connection_, std::move(response));
}

HttpServer::HttpServer(HttpOptions options, Hooks hooks)
    : options_(options), loop_(std::make_shared<Loop>(std::move(options), std::move(hooks))) {}

HttpServer::~HttpServer() {
  // Join the workers here: a task still holding a Responder would otherwise destroy the loop (and
  // this pool) on a worker thread.
  loop_->pool.reset();
}

void HttpServer::bind() { loop_->bind(); }
int HttpServer::port() const { return loop_->port; }
void HttpServer::run() { loop_->run(); }
void HttpServer::stop() { loop_->stop(); }
void HttpServer::offload(std::function<void()> fn) { loop_->pool->post(std::move(fn)); }
const HttpStats& HttpServer::stats() const { return loop_->stats; }

}  // namespace kiln::serve::http
