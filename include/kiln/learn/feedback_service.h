// The server's feedback loop, a serve extension (kiln/serve/extension.h) that `kiln serve` attaches
// when given --feedback-token-file:
//   POST /v1/feedback        {"items": [{"text": ..., ("image": base64 PNG/JPEG,) "label": ..., ("id": ...)}]} with
//                            `Authorization: Bearer <feedback token>`; answers
//                            {"accepted": N, "duplicates": N} once the items are in the log on disk
//   GET  /v1/feedback        the loop's state (log size, items learnt, served version, updates)
//   POST /v1/admin/rollback  serves the promoted version's parent again (the admin token guards it)
// Accepted items are appended to a SQLite write-ahead log (feedback.sqlite) before the answer; a
// background thread feeds them, in log order, to a Learner (learner.h: progressive validation,
// replay buffer, gated updates every `update_every` items or `update_interval_s`, drift detectors)
// and swaps each promoted version in through the server's atomic hot swap (with shadow_requests,
// after the candidate has answered copies of that many live predict requests). All of it lives under
// the state directory: feedback.sqlite, and the Learner's versions/, buffer.json, state.json,
// curve.jsonl. A restart resumes: the promoted version serves again and the items logged after the
// Learner's last saved state are learnt again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kiln/learn/learner.h"
#include "kiln/serve/extension.h"

namespace kiln::learn {

struct FeedbackOptions {
  /// Bearer token POST /v1/feedback requires (its own, not the admin token); >= 16 characters.
  std::string token;
  /// State directory; empty = default_state_dir() of the served artifact. Default empty.
  std::string state_dir;
  /// The model repository the server serves ("" for a single artifact): the state directory may
  /// not lie inside it (it would be served as a model). Default empty.
  std::string repository;
  /// The served model that learns; empty = the server's default model. Default empty.
  std::string model;
  /// Items one request may carry (429 beyond). Default 1000.
  int64_t max_items_per_request = 1000;
  /// Items one token may send in any 60 seconds (429 beyond, with Retry-After). Default 20000.
  int64_t max_items_per_minute = 20000;
  /// Seconds after which waiting items are learnt even if fewer than update_every (0 = never).
  /// Default 0.
  double update_interval_s = 0;
  /// A candidate that passes the gate first answers a copy of the next N text-only POST /v1/predict
  /// requests to the learning model, and its agreement with the served model is reported (log,
  /// curve.jsonl, its lineage, kiln_model_shadow_agreement) before it is promoted; 0 = promote at
  /// once. Default 0.
  int64_t shadow_requests = 0;
  /// The learning loop: buffer, update (allow_new_labels, max_regression, epochs), update_every,
  /// gate fraction, drift detectors. The server's gate asks more than kiln learn's by default: a
  /// rise on recent feedback must be significant (update.improvement_alpha 0.05, not 1).
  LearnOptions learn = [] {
    LearnOptions o;
    o.update.improvement_alpha = 0.05;
    return o;
  }();

  /// Throws ConfigError naming the flag and the value.
  void validate() const;
};

/// NAME.learn beside a single artifact (DIR/NAME -> DIR/NAME.learn); REPO.learn/NAME beside a model
/// repository REPO for its model NAME.
[[nodiscard]] std::string default_state_dir(const std::string& artifact_dir, const std::string& repository,
                                            const std::string& model);

class FeedbackService final : public serve::Extension {
 public:
  explicit FeedbackService(FeedbackOptions options);
  ~FeedbackService() override;

  [[nodiscard]] std::vector<std::string> routes() const override;
  /// Opens the state directory and the log, resumes the Learner (serving its promoted version when
  /// it has one), registers the metrics and starts the background thread.
  void attach(serve::Server& server, serve::MetricsRegistry& metrics) override;
  [[nodiscard]] serve::ExtensionResponse handle(const serve::ExtensionRequest& request) override;
  void detach() override;
  [[nodiscard]] bool wants_predictions() const override;
  void on_predicted(const std::string& model, const std::vector<std::string>& texts,
                    const std::vector<std::string>& labels) override;

  /// Blocks until every item logged so far has been learnt from (and the updates it started have
  /// finished), or `timeout_s` passed; whether it caught up. For tests and benchmarks.
  bool wait_idle(double timeout_s);
  /// The state directory in use (after attach()).
  [[nodiscard]] std::string state_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::learn
