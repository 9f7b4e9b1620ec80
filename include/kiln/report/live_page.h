// The served model's own page: what `kiln serve` answers on GET /. The artifact's report (summary,
// test-set classification report, confusion matrices, calibration, top features per class, data,
// config), a live panel that polls the server's /metrics (request rate, latency percentiles,
// confidence histogram, predictions per label, drift signals) and a try-it box that posts to
// /v1/predict (and /v1/explain where the server has it). The static part reads without JavaScript;
// the one inline script is allowed by its hash and talks to the page's own origin only
// (Content-Security-Policy connect-src 'self'); it never calls an admin route.
#pragma once

#include <string>

#include "kiln/report/run_report.h"

namespace kiln::report {

struct LivePageOptions {
  /// "kiln VERSION", shown in the footer.
  std::string generator = "kiln";
  /// Milliseconds between two reads of /metrics by the live panel (>= 250). Default 3000. The
  /// page's URL may override it: /?poll_ms=500.
  int poll_ms = 3000;
  /// Most probabilities the try-it box asks for (top_k, capped at the model's classes). Default 10.
  int top_k = 10;
  /// Routes the page calls, relative to its origin (a per-model page of a model repository points
  /// them at that model's routes). /metrics' request counts are read for `predict_path`.
  std::string metrics_path = "/metrics";
  std::string predict_path = "/v1/predict";
  std::string explain_path = "/v1/explain";
  /// Throws ConfigError naming the field and the value.
  void validate() const;
};

/// The page of `run` (load_run of the served artifact directory) served as `model_name`.
/// Formatting only.
[[nodiscard]] std::string server_page(const RunFiles& run, const std::string& model_name,
                                      const LivePageOptions& options = {});

/// Reads `artifact_dir` (load_run) and draws its page. When its files cannot be read (a damaged
/// metrics.jsonl next to it, say) the page states the error and keeps the live panel and the
/// try-it box, so a server never loses its page to a report problem.
[[nodiscard]] std::string server_page(const std::string& artifact_dir, const std::string& model_name,
                                      const LivePageOptions& options = {});

}  // namespace kiln::report
