// kiln report --server http://...: the HTTP GET of a server's /metrics, in kiln-ml only (the front
// binary hands such runs over rather than load cpp-httplib's TLS libraries at every start).
#include <httplib.h>

#include <string>

#include "kiln/core/error.h"
#include "verbs.h"

namespace kiln::cli {

std::string fetch_metrics_over_http(const std::string& where, const std::string& base, const std::string& path) {
  httplib::Client client(base);
  if (!client.is_valid()) throw ConfigError("--server " + where + ": not an http:// or https:// URL");
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  const auto res = client.Get(path);
  if (!res) {
    throw IoError("--server " + where + ": cannot fetch " + path + " (" + httplib::to_string(res.error()) +
                  "); is `kiln serve` running there?");
  }
  if (res->status != 200) {
    throw IoError("--server " + where + ": GET " + path + " answered HTTP " + std::to_string(res->status) +
                  "; point --server at a kiln serve address");
  }
  return res->body;
}

}  // namespace kiln::cli
