// Listening and accepting: binds the address, raises the open-file limit, sets up epoll, and accepts
// connections up to max_connections (beyond it, or out of descriptors: 503 and close at once).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http_loop.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"

namespace kiln::serve::http {

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

}  // namespace kiln::serve::http
