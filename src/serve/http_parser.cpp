#include "http_parser.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace kiln::serve::http {

namespace {

constexpr std::size_t kMaxHeaders = 100;

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool contains_token(const std::string& value, const char* token) {
  const std::string v = ascii_lower(value);
  std::size_t pos = 0;
  const std::size_t n = std::strlen(token);
  while ((pos = v.find(token, pos)) != std::string::npos) {
    const bool left = pos == 0 || v[pos - 1] == ',' || v[pos - 1] == ' ' || v[pos - 1] == '\t';
    const std::size_t e = pos + n;
    const bool right = e == v.size() || v[e] == ',' || v[e] == ' ' || v[e] == '\t';
    if (left && right) return true;
    pos = e;
  }
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

void trim(std::string_view& s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
}

ParseError refuse(int status, const char* code, std::string message) { return ParseError{status, code, std::move(message)}; }

ParseError malformed(const std::string& why) { return refuse(400, "bad_request", "malformed HTTP request: " + why); }

std::string too_large(std::size_t max_body_bytes) {
  return "request body exceeds " + std::to_string(max_body_bytes) + " bytes; send fewer or shorter texts per request";
}

}  // namespace

const std::string* Request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return &v;
  }
  return nullptr;
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<ParseError> parse_head(std::string_view head, std::size_t max_body_bytes, Request& req, Framing& framing) {
  auto next_line = [&](std::string_view& line) {
    const auto nl = head.find('\n');
    line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  };
  std::string_view line;
  next_line(line);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return malformed("the request line must be METHOD SP TARGET SP HTTP/1.1");
  }
  const std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > 32 || !std::all_of(method.begin(), method.end(), is_tchar)) {
    return malformed("the method is not a token");
  }
  if (target.empty() || target.front() != '/') return malformed("the request target must start with '/'");
  for (const char ch : target) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) return malformed("the request target holds a control character");
  }
  if (version == "HTTP/1.1") {
    req.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    req.minor_version = 0;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/") {
    return refuse(505, "http_version_not_supported", "the server speaks HTTP/1.0 and HTTP/1.1");
  } else {
    return malformed("the protocol version must be HTTP/1.1 or HTTP/1.0");
  }
  req.method.assign(method);
  req.target.assign(target);
  const auto q = target.find('?');
  if (!percent_decode(target.substr(0, q), req.path)) return malformed("the request path has a bad %-escape");
  if (q != std::string_view::npos) req.query.assign(target.substr(q + 1));
  while (!head.empty()) {
    next_line(line);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') return malformed("folded header lines are not allowed");
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return malformed("a header line has no name");
    const std::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return malformed("a header name is not a token");
    std::string_view value = line.substr(colon + 1);
    trim(value);
    if (req.headers.size() >= kMaxHeaders) {
      return refuse(431, "headers_too_large", "more than " + std::to_string(kMaxHeaders) + " headers");
    }
    req.headers.emplace_back(ascii_lower(std::string(name)), std::string(value));
  }
  framing = Framing{};
  bool have_length = false;
  for (const auto& [k, v] : req.headers) {
    if (k == "transfer-encoding") {
      if (ascii_lower(v) != "chunked") {
        return refuse(501, "not_implemented", "Transfer-Encoding '" + v + "' is not supported; send Content-Length or chunked");
      }
      framing.chunked = true;
    } else if (k == "content-length") {
      if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        return malformed("Content-Length is not a number");
      }
      const std::size_t n = std::stoull(v);
      if (have_length && n != framing.content_length) return malformed("two different Content-Length headers");
      have_length = true;
      framing.content_length = n;
    }
  }
  if (framing.chunked && have_length) return malformed("both Content-Length and Transfer-Encoding");
  if (framing.content_length > max_body_bytes) return refuse(413, "body_too_large", too_large(max_body_bytes));
  const std::string* connection = req.header("connection");
  framing.keep_alive = req.minor_version == 0 ? connection && contains_token(*connection, "keep-alive")
                                              : !(connection && contains_token(*connection, "close"));
  return std::nullopt;
}

ChunkedDecoder::Status ChunkedDecoder::feed(const std::string& in, std::size_t& pos, std::string& body,
                                            std::size_t max_body_bytes, std::size_t max_trailer_bytes,
                                            ParseError& error) {
  for (;;) {
    switch (part_) {
      case Part::kSize: {
        const auto nl = in.find('\n', pos);
        if (nl == std::string::npos) {
          if (in.size() - pos > 1024) {
            error = malformed("a chunk size line is too long");
            return Status::kError;
          }
          return Status::kNeedMore;
        }
        std::string_view l(in.data() + pos, nl - pos);
        if (const auto semi = l.find(';'); semi != std::string_view::npos) l = l.substr(0, semi);
        trim(l);
        if (l.empty() || l.size() > 15 || !std::all_of(l.begin(), l.end(), [](char ch) { return hex_value(ch) >= 0; })) {
          error = malformed("a chunk size is not a hex number");
          return Status::kError;
        }
        std::size_t size = 0;
        for (const char ch : l) size = size * 16 + static_cast<std::size_t>(hex_value(ch));
        pos = nl + 1;
        if (size == 0) {
          part_ = Part::kTrailer;
          break;
        }
        if (body.size() + size > max_body_bytes) {
          error = refuse(413, "body_too_large", too_large(max_body_bytes));
          return Status::kError;
        }
        chunk_left_ = size;
        part_ = Part::kData;
        break;
      }
      case Part::kData: {
        const std::size_t take = std::min(chunk_left_, in.size() - pos);
        body.append(in, pos, take);
        pos += take;
        chunk_left_ -= take;
        if (chunk_left_ > 0) return Status::kNeedMore;
        part_ = Part::kDataEnd;
        break;
      }
      case Part::kDataEnd: {
        if (in.size() - pos < 1) return Status::kNeedMore;
        if (in[pos] == '\n') {
          pos += 1;
        } else {
          if (in.size() - pos < 2) return Status::kNeedMore;
          if (in.compare(pos, 2, "\r\n") != 0) {
            error = malformed("a chunk is longer than its size");
            return Status::kError;
          }
          pos += 2;
        }
        part_ = Part::kSize;
        break;
      }
      case Part::kTrailer: {
        const auto nl = in.find('\n', pos);
        if (nl == std::string::npos) return Status::kNeedMore;
        const std::size_t len = nl - pos;
        trailer_bytes_ += len + 1;
        if (trailer_bytes_ > max_trailer_bytes) {
          error = refuse(431, "headers_too_large", "chunked trailers exceed " + std::to_string(max_trailer_bytes) + " bytes");
          return Status::kError;
        }
        const bool blank = len == 0 || (len == 1 && in[pos] == '\r');
        pos = nl + 1;
        if (blank) return Status::kDone;
        break;
      }
    }
  }
}

}  // namespace kiln::serve::http
