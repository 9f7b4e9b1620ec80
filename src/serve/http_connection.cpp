// A connection's input side: readiness events, reading, finding each request's head, framing and
// reading its body, and handing the complete request to the handler (one at a time per connection).
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "http_loop.h"

namespace kiln::serve::http {

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

}  // namespace kiln::serve::http
