#include "kiln/serve/auth_token.h"

#include <algorithm>

#include <sys/stat.h>

#include <fstream>

#include "kiln/core/error.h"

namespace kiln::serve {

AuthTokenFile read_auth_token_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw ConfigError("auth token file " + path + ": not a readable file; write the token (one line) to it");
  }
  std::ifstream in(path);
  if (!in) throw ConfigError("auth token file " + path + ": cannot be opened; check its permissions");
  AuthTokenFile out;
  out.readable_by_others = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
  std::getline(in, out.token);
  auto& t = out.token;
  while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) t.pop_back();
  if (t.size() < kMinAuthTokenChars) {
    throw ConfigError("auth token file " + path + ": the token has " + std::to_string(t.size()) +
                      " characters; use at least " + std::to_string(kMinAuthTokenChars) +
                      " (for example: head -c 32 /dev/urandom | base64)");
  }
  return out;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(1, b.size())]);
  return diff == 0;
}

}  // namespace kiln::serve
