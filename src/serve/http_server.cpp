#include "http_server.h"

#include "http_parser.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "kiln/core/error.h"
#include "kiln/core/log.h"

namespace kiln::serve::http {

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

namespace {

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

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

class WorkerPool {
 public:
  explicit WorkerPool(int n) {
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      q_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        fn = std::move(q_.front());
        q_.pop_front();
      }
      try {
        fn();
      } catch (const std::exception& e) {
        core::warn(std::string("serve: a request task failed: ") + e.what());
      } catch (...) {
        core::warn("serve: a request task failed with an unknown exception");
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

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

}  // namespace

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

void Loop::bind() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(opt.port);
  const std::string where = opt.host + ":" + port_s;
  if (const int rc = ::getaddrinfo(opt.host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    throw IoError("cannot listen on " + where + ": cannot resolve the host (" + ::gai_strerror(rc) +
                  "); pick another --host");
  }
  int fd = -1;
  int last_errno = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    int yes = 1;
    // SO_REUSEADDR only: SO_REUSEPORT would let a second server bind the same port silently.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) break;
    last_errno = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    throw IoError("cannot listen on " + where + " (" + std::strerror(last_errno) +
                  ": address in use, not a local address, or a privileged port); pick another --port or --host");
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  listen_fd = fd;

  // Every connection is a file descriptor: raise the soft limit toward max_connections.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    const rlim_t want = static_cast<rlim_t>(opt.max_connections) + 256;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = std::min(want, rl.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &rl);
      ::getrlimit(RLIMIT_NOFILE, &rl);
      if (rl.rlim_cur < want) {
        core::warn("serve: the open-file limit (" + std::to_string(rl.rlim_cur) + ") is below --max-connections + 256 (" +
                   std::to_string(want) + "); connections beyond it are refused; raise it with ulimit -n");
      }
    }
  }
  reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  ep = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ep < 0 || wake_fd < 0) throw IoError(std::string("cannot create the server's event loop: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerId;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  ev.data.u64 = kWakeId;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev);
}

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

void Loop::begin_stop(Clock::time_point now) {
  stop_seen = true;
  if (listen_fd >= 0) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, nullptr);
    ::close(listen_fd);
    listen_fd = -1;
  }
  for (auto& [id, cp] : conns) {
    Conn& c = *cp;
    if (c.dead) continue;
    if (c.state == State::kHeaders && !c.request_started && c.out_pos >= c.out.size()) {
      close_conn(c);  // idle keep-alive
    } else if (c.state == State::kHeaders || c.state == State::kBody) {
      if (c.deadline > now + kStopGrace) c.deadline = now + kStopGrace;
      c.close_after = true;
    } else {
      c.close_after = true;
    }
  }
  for (const uint64_t id : graveyard) conns.erase(id);
  graveyard.clear();
}

void Loop::reject(int fd) {
  ++stats.rejected;
  const Response r = error_response(503, "too_many_connections",
                                    "the server holds its maximum of " + std::to_string(opt.max_connections) +
                                        " connections; retry later or add replicas");
  std::string msg = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" +
                    r.body;
  [[maybe_unused]] const auto n = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(fd);
}

void Loop::accept_all() {
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
        // Out of descriptors: free the reserve to accept and refuse one, so the listener does not spin.
        ::close(reserve_fd);
        const int extra = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (extra >= 0) reject(extra);
        reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        continue;
      }
      return;  // EAGAIN, or an error the next readiness retries
    }
    if (stop_seen || conns.size() >= opt.max_connections) {
      reject(fd);
      continue;
    }
    int yes = 1;
    // Responses go out as one write, but a client's pipelined writes must not wait on delayed ACKs.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->id = next_id++;
    c->events = EPOLLIN;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    ++stats.accepted;
    ++stats.open;
    set_phase(*c, Phase::kIdle, Clock::now());
    conns.emplace(c->id, std::move(c));
  }
}

void Loop::set_phase(Conn& c, Phase p, Clock::time_point now) {
  c.phase = p;
  switch (p) {
    case Phase::kIdle: c.deadline = now + seconds(opt.idle_timeout_s); break;
    case Phase::kHeader: c.deadline = now + seconds(opt.header_timeout_s); break;
    case Phase::kBody: c.deadline = now + seconds(opt.body_timeout_s); break;
    case Phase::kWrite: c.deadline = now + seconds(opt.write_timeout_s); break;
    case Phase::kLinger: c.deadline = now + kLingerTime; break;
    case Phase::kNone: c.deadline = Clock::time_point::max(); break;
  }
  if (stop_seen && p != Phase::kNone && c.deadline > now + kStopGrace) c.deadline = now + kStopGrace;
}

void Loop::update_events(Conn& c) {
  if (c.dead) return;
  uint32_t want = 0;
  const bool writing = c.out_pos < c.out.size();
  if (writing) want |= EPOLLOUT;
  if (c.state == State::kLinger || (!writing && !c.peer_eof && (c.state == State::kHeaders || c.state == State::kBody))) {
    want |= EPOLLIN;
  }
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  c.events = want;
}

void Loop::close_conn(Conn& c) {
  if (c.dead) return;
  c.dead = true;
  ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.fd = -1;
  --stats.open;
  graveyard.push_back(c.id);
}

void Loop::on_event(Conn& c, uint32_t ev) {
  // Both directions are gone (or an error): no answer can reach the client any more. (A client that
  // only shut down its sending side shows as a read of 0 bytes instead; see read_some.)
  if (ev & (EPOLLHUP | EPOLLERR)) {
    close_conn(c);
    return;
  }
  if (ev & EPOLLOUT) {
    flush(c);
    if (c.dead) return;
    // A response finished: requests a client pipelined behind it are already buffered.
    if (c.out_pos >= c.out.size() && c.state == State::kHeaders && c.pos < c.in.size()) process(c);
    if (c.dead) return;
  }
  if (ev & EPOLLIN) read_some(c);
}

void Loop::read_some(Conn& c) {
  char buf[kReadChunk];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      if (c.state == State::kLinger) {
        c.lingered += static_cast<std::size_t>(n);
        if (c.lingered > kLingerBytes) {
          close_conn(c);
          return;
        }
        continue;
      }
      c.in.append(buf, static_cast<std::size_t>(n));
      // Bound what one read burst buffers: the parser refuses oversize input as soon as it sees it.
      if (c.in.size() - c.pos > opt.max_body_bytes + opt.max_header_bytes + kReadChunk) break;
      if (static_cast<std::size_t>(n) < sizeof(buf)) break;
      continue;
    }
    if (n == 0) {  // the peer closed or half-closed: nothing more arrives, but an answer may still go out
      if (c.state == State::kLinger) {
        close_conn(c);
        return;
      }
      c.peer_eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close_conn(c);
    return;
  }
  if (c.state != State::kLinger) process(c);
}

void Loop::process(Conn& c) {
  if (c.in_process) return;
  c.in_process = true;
  const auto now = Clock::now();
  while (!c.dead && c.out_pos >= c.out.size()) {
    if (c.state == State::kHeaders) {
      // Blank lines between requests are allowed (RFC 9112 2.2).
      while (c.pos < c.in.size() && (c.in[c.pos] == '\r' || c.in[c.pos] == '\n') && !c.request_started) ++c.pos;
      if (c.pos >= c.in.size()) {
        c.in.clear();
        c.pos = c.header_scan = 0;
        break;
      }
      if (!c.request_started) {
        c.request_started = true;
        c.req = Request{};
        c.req.started = now;
        c.header_scan = c.pos;
        set_phase(c, Phase::kHeader, now);
      }
      std::size_t end = std::string::npos;
      for (std::size_t i = std::max(c.header_scan, c.pos); i < c.in.size(); ++i) {
        if (c.in[i] == '\n' && ((i >= 1 && c.in[i - 1] == '\n') || (i >= 2 && c.in[i - 1] == '\r' && c.in[i - 2] == '\n'))) {
          end = i + 1;
          break;
        }
      }
      if (end == std::string::npos) {
        c.header_scan = c.in.size() > 2 ? c.in.size() - 2 : 0;
        if (c.in.size() - c.pos > opt.max_header_bytes) {
          fail(c, 431, "headers_too_large",
               "request line and headers exceed " + std::to_string(opt.max_header_bytes) + " bytes; send fewer or shorter headers");
        }
        break;
      }
      if (end - c.pos > opt.max_header_bytes) {
        fail(c, 431, "headers_too_large",
             "request line and headers exceed " + std::to_string(opt.max_header_bytes) + " bytes; send fewer or shorter headers");
        break;
      }
      if (!parse_headers(c, end)) break;
      c.pos = end;
      c.state = State::kBody;
      set_phase(c, Phase::kBody, now);
      const bool body_pending = c.framing.chunked || c.in.size() - c.pos < c.framing.content_length;
      if (body_pending) {
        if (const std::string* e = c.req.header("expect"); e && ascii_lower(*e) == "100-continue") {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          flush(c);
          if (c.dead) break;
        }
      }
    }
    if (c.state == State::kBody) {
      if (!read_body(c)) break;
      dispatch(c);
      continue;
    }
    break;  // kBusy or kLinger: wait
  }
  c.in_process = false;
  if (c.dead) return;
  // After the client's end of input, a request still being read can never complete: close once
  // what was answered is written. (Requests read in full are answered first.)
  if (c.peer_eof && (c.state == State::kHeaders || c.state == State::kBody) && c.out_pos >= c.out.size()) {
    close_conn(c);
    return;
  }
  update_events(c);
}

bool Loop::parse_headers(Conn& c, std::size_t end) {
  if (auto e = parse_head(std::string_view(c.in).substr(c.pos, end - c.pos), opt.max_body_bytes, c.req, c.framing)) {
    fail(c, e->status, e->code, e->message);
    return false;
  }
  c.chunks = ChunkedDecoder{};
  return true;
}

bool Loop::read_body(Conn& c) {
  if (!c.framing.chunked) {
    if (c.in.size() - c.pos < c.framing.content_length) return false;
    c.req.body.assign(c.in, c.pos, c.framing.content_length);
    c.pos += c.framing.content_length;
    return true;
  }
  ParseError e;
  switch (c.chunks.feed(c.in, c.pos, c.req.body, opt.max_body_bytes, opt.max_header_bytes, e)) {
    case ChunkedDecoder::Status::kDone:
      return true;
    case ChunkedDecoder::Status::kNeedMore:
      // Keep the input buffer small while a large chunked body streams in.
      c.in.erase(0, c.pos);
      c.pos = c.header_scan = 0;
      return false;
    case ChunkedDecoder::Status::kError:
      fail(c, e.status, e.code, e.message);
      return false;
  }
  return false;
}

void Loop::dispatch(Conn& c) {
  c.state = State::kBusy;
  set_phase(c, Phase::kNone, Clock::now());
  ++c.served;
  if (!c.framing.keep_alive || c.served >= opt.keep_alive_max || stop_seen) c.close_after = true;
  c.flight_method = c.req.method;
  c.flight_path = c.req.path;
  c.flight_started = c.req.started;
  c.flight_minor = c.req.minor_version;
  c.request_started = false;
  // Compact: keep only what a pipelining client sent after this request.
  c.in.erase(0, c.pos);
  c.pos = c.header_scan = 0;
  Request req = std::move(c.req);
  c.req = Request{};
  if (!hooks.handle) {
    deliver(c.id, error_response(500, "internal_error", "no handler"));
    return;
  }
  hooks.handle(std::move(req), Responder(shared_from_this(), c.id));
}

void Loop::queue_response(Conn& c, const Response& r) {
  std::string& o = c.out;
  if (c.out_pos >= o.size()) {
    o.clear();
    c.out_pos = 0;
  }
  o.reserve(o.size() + r.body.size() + 160);
  o += c.flight_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ";
  o += std::to_string(r.status);
  o += ' ';
  o += reason_phrase(r.status);
  o += "\r\nContent-Type: ";
  o += r.content_type;
  o += "\r\nContent-Length: ";
  o += std::to_string(r.body.size());
  for (const auto& [k, v] : r.headers) {
    o += "\r\n";
    o += k;
    o += ": ";
    o += v;
  }
  if (c.close_after) {
    o += "\r\nConnection: close";
  } else if (c.flight_minor == 0) {
    o += "\r\nConnection: keep-alive";
  }
  o += "\r\n\r\n";
  o += r.body;
}

void Loop::fail(Conn& c, int status, const std::string& code, const std::string& message) {
  // A request the HTTP layer refuses: answer it and close (the rest of the input cannot be trusted).
  c.close_after = true;
  c.state = State::kBusy;
  c.flight_method = c.req.method.empty() ? "-" : c.req.method;
  c.flight_path = c.req.path;
  c.flight_started = c.request_started ? c.req.started : Clock::now();
  c.flight_minor = 1;
  c.request_started = false;
  c.req = Request{};  // releases its guard
  const bool nested = c.in_process;
  c.in_process = true;  // deliver must not re-enter process()
  deliver(c.id, error_response(status, code, message));
  c.in_process = nested;
}

void Loop::deliver(uint64_t id, Response r) {
  const auto it = conns.find(id);
  if (it == conns.end() || it->second->dead) return;  // the client went away
  Conn& c = *it->second;
  if (c.state != State::kBusy) return;
  if (r.close || stop_seen || (c.peer_eof && c.pos >= c.in.size())) c.close_after = true;
  queue_response(c, r);
  if (hooks.on_response) hooks.on_response(c.flight_method, c.flight_path, c.flight_started, r.status);
  c.state = State::kHeaders;
  flush(c);
  if (c.dead) return;
  if (!c.in_process && c.out_pos >= c.out.size()) {
    process(c);
  } else {
    update_events(c);
  }
}

void Loop::flush(Conn& c) {
  while (c.out_pos < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c.phase != Phase::kWrite) set_phase(c, Phase::kWrite, Clock::now());
      update_events(c);
      return;
    }
    close_conn(c);
    return;
  }
  finish_write(c);
}

void Loop::finish_write(Conn& c) {
  c.out.clear();
  c.out_pos = 0;
  if (c.state == State::kBody) {  // an interim 100 Continue went out; the body is still to come
    if (c.phase == Phase::kWrite) set_phase(c, Phase::kBody, Clock::now());
    update_events(c);
    return;
  }
  if (c.state == State::kLinger) return;
  if (c.close_after) {
    // Lingering close: stop sending, drain what the client still sends, then close.
    ::shutdown(c.fd, SHUT_WR);
    c.state = State::kLinger;
    c.in.clear();
    c.pos = 0;
    set_phase(c, Phase::kLinger, Clock::now());
    update_events(c);
    return;
  }
  if (c.state == State::kHeaders && !c.request_started) set_phase(c, Phase::kIdle, Clock::now());
  update_events(c);
}

void Loop::sweep(Clock::time_point now) {
  for (auto& [id, cp] : conns) {
    Conn& c = *cp;
    if (c.dead || c.phase == Phase::kNone || now < c.deadline) continue;
    switch (c.phase) {
      case Phase::kIdle:
        ++stats.idle_timeouts;
        close_conn(c);
        break;
      case Phase::kHeader:
      case Phase::kBody: {
        const bool header = c.phase == Phase::kHeader;
        ++(header ? stats.header_timeouts : stats.body_timeouts);
        const double limit = header ? opt.header_timeout_s : opt.body_timeout_s;
        char secs[32];
        std::snprintf(secs, sizeof(secs), "%g", limit);
        if (stop_seen) {
          close_conn(c);
        } else {
          fail(c, 408, "request_timeout",
               std::string("the request's ") + (header ? "headers" : "body") + " did not arrive within " + secs +
                   " s; send the whole request at once");
        }
        break;
      }
      case Phase::kWrite:
        ++stats.write_timeouts;
        close_conn(c);
        break;
      case Phase::kLinger:
      case Phase::kNone:
        close_conn(c);
        break;
    }
  }
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
