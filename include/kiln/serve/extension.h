// The server's extension interface: another module (continual learning's feedback loop, ...) adds
// routes, metrics and background work to `kiln serve` without the serve module depending on it.
// The CLI builds the extensions and hands them to the server in ServerOptions::extensions.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace kiln::serve {

class MetricsRegistry;
class Server;

/// What an extension sees of a request: no connection, no raw header block.
struct ExtensionRequest {
  std::string method;  ///< "GET", "POST", ...
  std::string path;    ///< percent-decoded, without the query
  std::string body;
  /// The Authorization header's value; empty when absent.
  std::string authorization;
};

/// An answer: a JSON body with `status`, or, with `code` set, the server's error body
/// {"error": {"code", "message": body}} (the server counts it in kiln_errors_total{code}).
struct ExtensionResponse {
  int status = 200;
  std::string body;
  std::string code;
  std::vector<std::pair<std::string, std::string>> headers;

  [[nodiscard]] static ExtensionResponse ok(std::string json_body) { return {200, std::move(json_body), "", {}}; }
  [[nodiscard]] static ExtensionResponse error(int status, std::string code, std::string message) {
    return {status, std::move(message), std::move(code), {}};
  }
};

/// Lifecycle: constructed by the caller; attach() once the server has loaded its models (from the
/// Server's constructor); handle() on HTTP worker threads, concurrently; detach() once, before the
/// server stops its models (from its destructor). handle() and detach() must be thread-safe.
class Extension {
 public:
  virtual ~Extension() = default;
  /// The exact paths it answers. A path under /v1/admin/ needs the server's admin token first
  /// (--auth-token-file), as every admin route does; any other path is the extension's to guard.
  [[nodiscard]] virtual std::vector<std::string> routes() const = 0;
  /// Registers its metrics and starts its background work. `server` outlives detach(). Throws
  /// (ConfigError, IoError, ...) to fail the server's start with that message.
  virtual void attach(Server& server, MetricsRegistry& metrics) = 0;
  /// Answers one request to one of routes(). May block (disk, locks); never throws for bad input
  /// (an error answer instead); an exception is a 500 whose details go to the log only.
  [[nodiscard]] virtual ExtensionResponse handle(const ExtensionRequest& request) = 0;
  /// Stops the background work and waits for it.
  virtual void detach() = 0;

  /// Whether the next POST /v1/predict requests should be shown to on_predicted() (read per
  /// request: keep it cheap, e.g. an atomic). Default false.
  [[nodiscard]] virtual bool wants_predictions() const { return false; }
  /// A text-only POST /v1/predict request that model `model` answered: its texts and top-1 labels.
  /// Called on an inference thread after the answer was computed: must not block (queue the work).
  virtual void on_predicted(const std::string& model, const std::vector<std::string>& texts,
                            const std::vector<std::string>& labels) {
    (void)model, (void)texts, (void)labels;
  }
};

}  // namespace kiln::serve
