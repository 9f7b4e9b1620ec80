// Base64 (RFC 4648, standard alphabet, '=' padding) for images sent inside JSON requests.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kiln::serve {

/// Decodes `in` into `out`. Accepts the standard alphabet with or without '=' padding, and a
/// `data:<type>;base64,` prefix (a data URL, as a browser's FileReader writes it); no whitespace.
/// Stops once `out` would exceed `max_bytes`. Returns false, with `bad_at` = the offset of the
/// first character that is not base64 (or `in.size()` for a wrong length, or the offset where the
/// limit was reached with `too_large` set), otherwise true. Never throws except std::bad_alloc.
[[nodiscard]] bool decode_base64(std::string_view in, std::size_t max_bytes, std::string& out, std::size_t& bad_at,
                                 bool& too_large);

}  // namespace kiln::serve
