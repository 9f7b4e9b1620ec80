// libFuzzer target for the model server's request parser. Input: the request body. The parser must
// return true with a valid request or false with a 4xx error, for any bytes: no crash, no exception,
// no sanitizer report, and a refused request leaves no texts or images behind. A valid request holds
// texts, images or both (then one of each per input).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kiln/serve/request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  kiln::serve::RequestLimits limits;
  limits.max_body_bytes = 4096;
  limits.max_texts = 8;
  limits.max_text_bytes = 64;
  limits.max_nesting = 4;
  limits.max_image_bytes = 256;
  kiln::serve::PredictRequest req;
  kiln::serve::RequestError err;
  if (kiln::serve::parse_predict_request(body, limits, req, err)) {
    if (req.size() < 1 || req.size() > limits.max_texts || req.top_k < 1 || req.top_k > limits.max_top_k) std::abort();
    if (!req.texts.empty() && !req.images.empty() && req.texts.size() != req.images.size()) std::abort();
    for (const auto& t : req.texts) {
      if (t.size() > limits.max_text_bytes) std::abort();
    }
    for (const auto& im : req.images) {
      if (im.size() > limits.max_image_bytes) std::abort();
    }
  } else {
    if (err.status < 400 || err.status > 499 || err.code.empty() || err.message.empty() || !req.texts.empty() ||
        !req.images.empty()) {
      std::abort();
    }
    (void)kiln::serve::error_body(err);
  }
  return 0;
}
