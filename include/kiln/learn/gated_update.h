// One gated update of a served model (continual learning): warm-start a candidate from the served
// artifact (its preprocessors kept, not refitted: new words stay out of the vocabulary), train it on
// the new items mixed with items replayed from the buffer, score candidate and served model by
// macro-F1 on the gate set (never trained on), and promote the candidate only if it does not lose
// more than `max_regression` points there and improves on recent held-out feedback.
#pragma once

#include <functional>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/artifact/artifact.h"
#include "kiln/data/dataset.h"
#include "kiln/learn/replay_buffer.h"
#include "kiln/pipeline/pipeline.h"

namespace kiln::learn {

struct UpdateOptions {
  /// Passes over the update's training mix. Default 2.
  int epochs = 2;
  /// Learning rate of the update; 0 = the served model's training learning rate. Default 0.
  double lr = 0;
  /// Macro-F1 points (0-100 scale) on the gate set the candidate may lose and still be promoted.
  /// Default 0.5.
  double max_regression = 0.5;
  /// Significance the improvement on recent feedback must reach: a one-sided sign test over the
  /// recent items exactly one of the two models gets right must give p < this (1 = off: any rise
  /// of macro-F1 counts). A stream of random labels then improves only by chance, and is stopped.
  /// `kiln serve`'s feedback loop uses 0.05. In (0, 1]. Default 1.
  double improvement_alpha = 1.0;
  /// New labels in the new items grow the classifier head (else those items are skipped). Default false.
  bool allow_new_labels = false;
  /// Seeds the update's initialisation of new rows, shuffling and dropout. Default 0.
  uint64_t seed = 0;
  /// Asked after every training step (and by the Learner after every 32 items it predicts): when it
  /// returns true the thread gives up the CPU (sched_yield), so threads waiting to serve requests run
  /// first. The server's background updates set it to "requests arrived since the last call": a
  /// thread that yields after every step gets little CPU while other threads stay runnable, so it
  /// must not yield when nothing waits to be served. Default unset: never yields.
  std::function<bool()> yield_if;
  /// Encodes the training mix and the gate's rows for both models (they share the preprocessors:
  /// a warm start keeps them). The Learner passes its EncodingCache, so an item is encoded once
  /// however often it is replayed or scored. Default unset: prep::encode_all each time.
  pipeline::Encoder encode;
};
/// Throws ConfigError naming the field and the value.
void validate(const UpdateOptions& options);

/// P(X >= wins) for X ~ Binomial(wins + losses, 1/2): the one-sided sign test. 1 when both are 0.
[[nodiscard]] double sign_test_p(int64_t wins, int64_t losses);

/// Macro-averaged F1 over the labels that occur in `truth` or `predicted` (scikit-learn's
/// f1_score(average="macro") default), in [0, 1]. Empty input: 0.
[[nodiscard]] double macro_f1(const std::vector<std::string>& truth, const std::vector<std::string>& predicted);

struct GateScores {
  double served_gate = 0, candidate_gate = 0;      ///< macro-F1 on the gate set, [0, 1]
  double served_recent = 0, candidate_recent = 0;  ///< macro-F1 on the recent held-out feedback
  /// Recent items only the candidate / only the served model gets right, and the sign test's
  /// one-sided p-value that the candidate wins that often by chance.
  int64_t candidate_only = 0, served_only = 0;
  double improvement_p = 1;
  int64_t gate_rows = 0, recent_rows = 0;
};

struct UpdateResult {
  bool promoted = false;
  /// Why the candidate was rejected (empty when promoted); `reason_code` counts it: "regression",
  /// "no_improvement", "empty_gate", "no_recent_feedback", "nothing_to_train".
  std::string reason, reason_code;
  GateScores scores;
  artifact::Artifact candidate;  ///< the trained candidate (also when rejected)
  int64_t trained_new = 0, trained_replayed = 0;
  std::vector<std::string> new_labels;  ///< classes the candidate added (allow_new_labels)
  std::vector<std::string> warnings;
  double train_seconds = 0;
  /// Of train_seconds, the part spent encoding the training mix with the parent's preprocessors.
  double featurize_seconds = 0;
};

/// Runs one gated update. `gate_set` = the artifact's held-out sample plus the feedback held out from
/// training; `recent` = the most recent held-out feedback. Replays round(new_items × replay_ratio)
/// items sampled from `buffer` (batch size: the buffer's), then offers `new_items` to the buffer.
/// Throws DataError/ConfigError from training (e.g. no new item has a label the model knows).
[[nodiscard]] UpdateResult gated_update(const artifact::Artifact& served, const data::Dataset& new_items,
                                        ReplayBuffer& buffer, const data::Dataset& gate_set,
                                        const data::Dataset& recent, const UpdateOptions& options);

}  // namespace kiln::learn
