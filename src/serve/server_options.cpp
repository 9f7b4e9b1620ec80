#include <arpa/inet.h>

#include "kiln/core/error.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/server.h"

namespace kiln::serve {

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

void ServerOptions::validate() const {
  if (host.empty()) throw ConfigError("serve.host is empty; use 127.0.0.1 (loopback) or 0.0.0.0 (all interfaces)");
  if (port < 0 || port > 65535) throw ConfigError("serve.port must be in [0, 65535], got " + std::to_string(port));
  if (http_threads < 1 || http_threads > 4096) {
    throw ConfigError("serve.threads must be in [1, 4096], got " + std::to_string(http_threads));
  }
  if (inference_threads < 0) {
    throw ConfigError("serve.inference_threads must be >= 0 (0 = keep --threads), got " + std::to_string(inference_threads));
  }
  batching.validate();
  if (!auth_token.empty() && auth_token.size() < kMinAuthTokenChars) {
    throw ConfigError("serve.auth_token has " + std::to_string(auth_token.size()) + " characters; use at least " +
                      std::to_string(kMinAuthTokenChars) + ", or none to leave the admin routes open");
  }
  if (auth_token.empty() && !is_loopback_host(host)) {
    throw ConfigError("--host " + host +
                      " serves beyond this machine, and the admin routes (POST /v1/admin/reload) need a token "
                      "there: write one with `head -c 32 /dev/urandom | base64 > token && chmod 600 token` and pass "
                      "--auth-token-file token (or bind --host 127.0.0.1)");
  }
  if (drift_window < 1) throw ConfigError("serve.drift_window must be >= 1, got 0");
  if (keep_alive_max < 1) throw ConfigError("serve.keep_alive_max must be >= 1, got 0");
  if (!(keep_alive_timeout_s > 0) || keep_alive_timeout_s > 86400) {
    throw ConfigError("serve.keep_alive_timeout_s must be in (0, 86400], got " + std::to_string(keep_alive_timeout_s));
  }
  if (!(header_timeout_s > 0) || header_timeout_s > 3600) {
    throw ConfigError("serve.header_timeout_s must be in (0, 3600], got " + std::to_string(header_timeout_s));
  }
  if (!(body_timeout_s > 0) || body_timeout_s > 3600) {
    throw ConfigError("serve.body_timeout_s must be in (0, 3600], got " + std::to_string(body_timeout_s));
  }
  if (max_connections < 1) throw ConfigError("serve.max_connections must be >= 1, got 0");
  if (limits.max_texts < 1 || limits.max_body_bytes < 16 || limits.max_text_bytes < 1 || limits.max_nesting < 2 ||
      limits.max_top_k < 1) {
    throw ConfigError("serve limits must be positive (max_texts >= 1, max_body_bytes >= 16, max_text_bytes >= 1, "
                      "max_nesting >= 2, max_top_k >= 1)");
  }
}

}  // namespace kiln::serve
