// Private to the report kit: SHA-256 (FIPS 180-4) and base64, for the Content-Security-Policy hash
// of a page's inline script ('sha256-BASE64'). Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::report::detail {

/// The 32-byte SHA-256 digest of `bytes`.
[[nodiscard]] std::array<uint8_t, 32> sha256(std::string_view bytes);
/// Standard base64 (RFC 4648, '+' '/' and '=' padding) of `bytes`.
[[nodiscard]] std::string base64(std::string_view bytes);
/// The CSP source expression that allows exactly `script` inline: 'sha256-BASE64'.
[[nodiscard]] std::string csp_script_hash(std::string_view script);

}  // namespace kiln::report::detail
