// A connection's output side: the status line and headers of an answer, refusals the HTTP layer
// makes itself, delivery from the handler, writing, and what follows a finished write (the next
// pipelined request, idle keep-alive, or a lingering close).
#include <sys/socket.h>

#include <cerrno>

#include "http_loop.h"

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

}  // namespace kiln::serve::http
