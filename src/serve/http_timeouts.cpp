// Deadlines: each connection's phase (idle, header, body, write, linger) sets when it times out;
// the sweep answers 408 or closes what passed its deadline; stopping shortens every deadline to a grace.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstdio>

#include "http_loop.h"

namespace kiln::serve::http {

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

}  // namespace kiln::serve::http
