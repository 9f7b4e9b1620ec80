// HTTP/1.1 request parsing for the server's event loop (RFC 9112): the request line and headers,
// the body's framing (Content-Length or chunked), and an incremental chunked-body decoder. Pure
// functions over bytes: no sockets, no clocks.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "http_server.h"

namespace kiln::serve::http {

/// Why a request is refused: the status, a stable code and a message for the client.
struct ParseError {
  int status = 400;
  std::string code;
  std::string message;
};

/// How the body that follows the headers is delimited, and whether the connection stays open.
struct Framing {
  bool chunked = false;
  std::size_t content_length = 0;
  bool keep_alive = true;
};

/// Parses `head` (request line and headers, through the blank line) into `req`'s method, target,
/// path, query, version and headers, and `framing`. Refuses a malformed line (400), an HTTP version
/// other than 1.0/1.1 (505), more than 100 headers (431), a transfer coding other than chunked
/// (501), conflicting lengths (400) and a Content-Length over `max_body_bytes` (413).
[[nodiscard]] std::optional<ParseError> parse_head(std::string_view head, std::size_t max_body_bytes, Request& req,
                                                   Framing& framing);

/// Decodes a chunked body as its bytes arrive.
class ChunkedDecoder {
 public:
  enum class Status { kNeedMore, kDone, kError };
  /// Consumes `in` from `pos` (advanced past what was used), appending chunk data to `body`. kError
  /// fills `error` (400 malformed, 413 over `max_body_bytes`, 431 trailers over `max_trailer_bytes`).
  Status feed(const std::string& in, std::size_t& pos, std::string& body, std::size_t max_body_bytes,
              std::size_t max_trailer_bytes, ParseError& error);

 private:
  enum class Part { kSize, kData, kDataEnd, kTrailer };
  Part part_ = Part::kSize;
  std::size_t chunk_left_ = 0;
  std::size_t trailer_bytes_ = 0;
};

/// `s` with ASCII letters lower-cased.
[[nodiscard]] std::string ascii_lower(std::string s);

}  // namespace kiln::serve::http
