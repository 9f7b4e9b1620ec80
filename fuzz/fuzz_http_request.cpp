// libFuzzer target for the server's HTTP/1.1 request parser: the request line and headers
// (parse_head) and a chunked body fed in pieces (ChunkedDecoder). For any bytes: no crash, no
// sanitizer report; a refusal has a 4xx/5xx status, a code and a message; an accepted head has a
// path starting with '/' and a Content-Length within the limit; a decoded body stays within it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "http_parser.h"

namespace {

void check_refusal(const kiln::serve::http::ParseError& e) {
  const int s = e.status;
  if (!(s == 400 || s == 413 || s == 431 || s == 501 || s == 505) || e.code.empty() || e.message.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kiln::serve::http;
  constexpr std::size_t kMaxBody = 256;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const auto end = bytes.find("\r\n\r\n");
  const std::size_t head_end = end == std::string::npos ? bytes.size() : end + 4;
  Request req;
  Framing framing;
  if (const auto e = parse_head(std::string_view(bytes).substr(0, head_end), kMaxBody, req, framing)) {
    check_refusal(*e);
    return 0;
  }
  if (req.path.empty() || req.path.front() != '/' || framing.content_length > kMaxBody) std::abort();
  if (!framing.chunked) return 0;
  // The body arrives in pieces whose sizes come from the input itself.
  ChunkedDecoder decoder;
  std::string in, body;
  std::size_t pos = 0, next = head_end;
  while (next < bytes.size()) {
    const std::size_t piece = 1 + static_cast<unsigned char>(bytes[next]) % 17;
    in.append(bytes, next, piece);
    next += piece;
    ParseError e;
    const auto status = decoder.feed(in, pos, body, kMaxBody, 128, e);
    if (pos > in.size() || body.size() > kMaxBody) std::abort();
    if (status == ChunkedDecoder::Status::kError) {
      check_refusal(e);
      return 0;
    }
    if (status == ChunkedDecoder::Status::kDone) return 0;
  }
  return 0;
}
