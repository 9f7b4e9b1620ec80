// The continual-learning loop over a stream of labelled feedback (`kiln learn`): progressive
// validation as River does — each item is first predicted by the served model and scored, then
// learnt from. A share of the feedback is held out for the gate (never trained on); the rest goes
// into updates every `update_every` items (or at once when a drift detector fires), each a gated
// update (gated_update.h). All state lives under the state directory:
//   versions/vNNNN/   every promoted version, a complete artifact (written atomically) whose
//                     manifest "lineage" names its parent version and the items seen
//   buffer.json       the replay buffer, state.json the served version and counters (both atomic)
//   curve.jsonl       the learning curve: one record per update, drift and the end
// A crash (kill -9) leaves complete versions only; reopening the directory resumes from state.json
// and removes half-written temporaries. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/artifact/artifact.h"
#include "kiln/artifact/predictor.h"
#include "kiln/learn/drift_detector.h"
#include "kiln/learn/encoding_cache.h"
#include "kiln/learn/feedback_stream.h"
#include "kiln/learn/gated_update.h"
#include "kiln/learn/replay_buffer.h"

namespace kiln::learn {

struct LearnOptions {
  ReplayBufferOptions buffer;
  UpdateOptions update;
  /// New (trained-on) items between updates. Default 100.
  int64_t update_every = 100;
  /// Share of the feedback held out for the gate, never trained on. Default 0.1.
  double gate_fraction = 0.1;
  /// Most held-out feedback items kept in the gate set (the most recent). Default 1000.
  int64_t gate_feedback_max = 1000;
  /// Held-out feedback items that make up "recent feedback" for the improvement check. Default 200.
  int64_t recent_window = 200;
  /// A drift (ADWIN or Page-Hinkley on the 0/1 error stream) starts an update at once when at least
  /// a batch of new items waits. Default true.
  bool update_on_drift = true;
  AdwinOptions adwin;
  PageHinkleyOptions page_hinkley;
  /// A candidate that passes the gate is held (held()) until promote_held() or discard_held()
  /// instead of promoted at once; no update runs while one is held (the server's --shadow).
  /// Default false.
  bool hold_promotions = false;
  /// Most bytes of encoded items kept between updates (EncodingCache): each item is encoded once
  /// for its prediction, its training and replays, and the gate. 0 = encode each time. Default 128 MiB.
  int64_t encoding_cache_bytes = EncodingCache::kDefaultBytes;
  /// How messages name the state directory's flag ("--out" for kiln learn, "--state-dir" for
  /// kiln serve). Default "--out".
  std::string state_flag = "--out";
};
/// Throws ConfigError naming the flag-level field and the value.
void validate(const LearnOptions& options);

struct LearnSummary {
  int64_t items = 0, correct = 0, duplicates = 0;
  int64_t updates = 0, promoted = 0, failed = 0;
  std::map<std::string, int64_t> rejected;  ///< by reason code
  std::map<std::string, int64_t> drifts;    ///< by detector
  std::string version;                      ///< the served version ("" = the original artifact)
  [[nodiscard]] double online_accuracy() const { return items ? static_cast<double>(correct) / items : 0.0; }
  [[nodiscard]] nlohmann::json to_json() const;
};

class Learner {
 public:
  /// Opens `state_dir` (created if missing; resumed when it holds state.json from the same artifact)
  /// for the artifact at `artifact_dir`. Throws ConfigError when state_dir belongs to another
  /// artifact or its buffer has other options, ArtifactError/DataError for corrupt files.
  Learner(const std::string& artifact_dir, const std::string& state_dir, LearnOptions options);

  /// Progressive validation of `items` in order: predict, score, then learn. An item whose label the
  /// served model does not know is a DataError naming item.where (unless allow_new_labels).
  void observe(const std::vector<FeedbackItem>& items);
  /// Offers already-learnt labelled items (e.g. the model's training rows) to the replay buffer only:
  /// not scored, not trained on, not counted as feedback. Seeds replay with the old classes.
  void remember(const std::vector<FeedbackItem>& items);
  /// Runs the update the remaining new items are waiting for, writes the end record; the summary.
  LearnSummary finish();
  /// Runs an update now when new items wait (the server's --update-interval); whether one ran.
  bool update_now(const std::string& trigger);
  /// Serves the promoted version's parent again (the original artifact for v0001): returns its
  /// directory. The state records it, so the next update starts from it. Throws ConfigError when
  /// the original artifact is served (nothing to roll back to).
  std::string rollback();
  /// The directory of the served version (the original artifact or versions/vNNNN).
  [[nodiscard]] std::string served_dir() const;
  /// The FeedbackItem::seq of the last item learnt from as of the last state write (0: none).
  [[nodiscard]] int64_t cursor() const { return saved_cursor_; }
  /// Items waiting for the next update.
  [[nodiscard]] std::size_t pending() const { return pending_.size(); }
  /// Scores of the last update's gate (all 0 before the first).
  [[nodiscard]] const GateScores& last_gate() const { return last_gate_; }
  /// The candidate that passed the gate and waits (hold_promotions), or null.
  [[nodiscard]] const artifact::Artifact* held() const { return held_ ? &held_->candidate : nullptr; }
  /// Promotes the held candidate; `report` (e.g. its shadow agreement) goes into its lineage and
  /// the curve. Nothing when none is held.
  void promote_held(const nlohmann::json& report);
  /// ADWIN's estimate of the error rate of the feedback (its window's mean).
  [[nodiscard]] double adwin_error_rate() const { return adwin_.estimation(); }

  [[nodiscard]] const LearnSummary& summary() const { return summary_; }
  [[nodiscard]] const artifact::Artifact& served() const { return served_; }
  [[nodiscard]] const ReplayBuffer& buffer() const { return buffer_; }
  /// Called with one line per update, promotion, rejection and drift (the CLI logs them).
  std::function<void(const std::string&)> on_message;

 private:
  void resume();
  void run_update(const std::string& trigger);
  void promote(UpdateResult& r);
  void write_state();
  void record(const nlohmann::json& j);
  void say(const std::string& s) const {
    if (on_message) on_message(s);
  }

  std::string artifact_dir_, state_dir_;
  LearnOptions options_;
  artifact::Artifact served_;
  std::unique_ptr<artifact::Predictor> predictor_;
  /// Encodings by the served preprocessors, which never change: every version is a warm start.
  EncodingCache encodings_;
  data::Dataset heldout_;
  ReplayBuffer buffer_;
  data::Dataset pending_;
  std::deque<data::Example> gate_feedback_;
  std::deque<int> recent_correct_;
  std::set<std::string> ids_;
  std::set<std::string> known_labels_;
  Adwin adwin_;
  PageHinkley page_hinkley_;
  std::mt19937_64 gate_rng_;
  LearnSummary summary_;
  int64_t next_version_ = 1;
  int64_t cursor_ = 0, saved_cursor_ = 0;
  GateScores last_gate_;
  std::unique_ptr<UpdateResult> held_;
  std::ofstream curve_;
};

}  // namespace kiln::learn
