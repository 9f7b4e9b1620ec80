// The bearer token that guards the server's admin routes, read from a file (so it never appears in
// a process listing or a shell history).
#pragma once

#include <cstddef>
#include <string>

namespace kiln::serve {

/// Fewest characters an admin bearer token may have (ServerOptions::auth_token).
inline constexpr std::size_t kMinAuthTokenChars = 16;

struct AuthTokenFile {
  /// The file's first line without trailing spaces, tabs and '\r'.
  std::string token;
  /// The file's mode lets its group or others read, write or execute it (the caller should warn:
  /// chmod 600).
  bool readable_by_others = false;
};

/// Reads the token in `path`. Throws ConfigError naming the path and the fix when it is not a
/// regular file or the token is shorter than kMinAuthTokenChars.
[[nodiscard]] AuthTokenFile read_auth_token_file(const std::string& path);

/// Whether `a` equals `b`, in time that depends on a's length only (a token check that does not
/// tell a client how much of its guess was right).
[[nodiscard]] bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace kiln::serve
