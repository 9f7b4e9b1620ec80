#include "kiln/learn/gated_update.h"

#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "kiln/artifact/predictor.h"
#include "kiln/core/error.h"
#include "kiln/learn/head_growth.h"
#include "kiln/pipeline/pipeline.h"
#include "kiln/train/run_config.h"

namespace kiln::learn {
namespace {

std::string points(double f1) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(2);
  s << 100 * f1;
  return s.str();
}

// The served model's training settings, then this update's: no validation split, no calibration,
// no checkpoints.
train::RunConfig update_config(const artifact::Artifact& served, const ReplayBuffer& buffer, const UpdateOptions& o) {
  train::RunConfig c = train::recommended_config();
  const auto& t = served.manifest.training;
  // An ensemble's "train" section is its first member's recipe (e.g. the per-example solver of a
  // bag model), which does not apply to the ensemble: the updates train it as a whole with the
  // mini-batch trainer (the recommended settings), its members' calibrated mixture as the model.
  const bool ensemble = served.manifest.model.family == "ensemble";
  if (!ensemble && t.is_object() && t.contains("train")) {
    try {
      train::apply_config({{"train", t["train"]}}, c, "the served artifact's training config");
    } catch (const ConfigError&) {
      c = train::recommended_config();  // an older artifact's keys: the defaults train it as well
    }
  }
  c.trainer.epochs = o.epochs;
  if (c.trainer.solver == "minibatch") c.trainer.batch_size = buffer.options().batch_size;
  if (o.lr > 0) c.trainer.optimizer.lr = o.lr;
  c.trainer.seed = o.seed;
  c.trainer.early_stopping_patience = 0;
  c.trainer.calibrate = "none";
  c.trainer.run_dir.clear();
  c.trainer.resume = false;
  c.trainer.stop_after_epochs = 0;
  c.trainer.device = "cpu";
  return c;
}

// Both models' labels for the rows of `ds`, from one encoding (the candidate keeps the served
// model's preprocessors).
struct Labelled {
  std::vector<std::string> served, candidate;
};
Labelled predicted_labels(const artifact::Artifact& served, const artifact::Artifact& candidate, const data::Dataset& ds,
                          const pipeline::Encoder& encode) {
  Labelled out;
  if (ds.size() == 0) return out;
  const nn::Batch x = encode ? encode(served.preprocessors, ds) : prep::encode_all(served.preprocessors, ds);
  artifact::PredictorOptions po;
  po.variant = "fp32";
  for (auto [a, labels] : {std::pair{&served, &out.served}, std::pair{&candidate, &out.candidate}}) {
    const artifact::Predictor p(*a, po);
    for (const auto& pred : p.predict(x)) labels->push_back(pred.label);
  }
  return out;
}

}  // namespace

void validate(const UpdateOptions& o) {
  if (o.epochs < 1) throw ConfigError("update epochs must be >= 1, got " + std::to_string(o.epochs));
  if (!std::isfinite(o.lr) || o.lr < 0) {
    throw ConfigError("update learning rate must be >= 0 (0 = the served model's), got " + std::to_string(o.lr));
  }
  if (!(o.improvement_alpha > 0 && o.improvement_alpha <= 1)) {
    throw ConfigError("improvement alpha must be in (0, 1] (1 = off), got " + std::to_string(o.improvement_alpha));
  }
  if (!std::isfinite(o.max_regression) || o.max_regression < 0 || o.max_regression > 100) {
    throw ConfigError("max regression must be in [0, 100] macro-F1 points, got " + std::to_string(o.max_regression));
  }
}

double sign_test_p(int64_t wins, int64_t losses) {
  const int64_t n = wins + losses;
  if (n <= 0) return 1;
  // Sum of C(n, k) / 2^n for k >= wins, in logs so large n neither overflows nor underflows.
  double p = 0;
  for (int64_t k = wins; k <= n; ++k) {
    p += std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) - n * std::log(2.0));
  }
  return std::min(1.0, p);
}

double macro_f1(const std::vector<std::string>& truth, const std::vector<std::string>& predicted) {
  if (truth.size() != predicted.size()) throw DataError("macro_f1: truth and predictions differ in length");
  if (truth.empty()) return 0;
  std::map<std::string, int64_t> tp, fp, fn;
  std::set<std::string> labels(truth.begin(), truth.end());
  labels.insert(predicted.begin(), predicted.end());
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] == predicted[i]) {
      ++tp[truth[i]];
    } else {
      ++fn[truth[i]];
      ++fp[predicted[i]];
    }
  }
  double sum = 0;
  for (const auto& l : labels) {
    const double denom = 2.0 * tp[l] + fp[l] + fn[l];
    sum += denom > 0 ? 2.0 * tp[l] / denom : 0.0;
  }
  return sum / static_cast<double>(labels.size());
}

UpdateResult gated_update(const artifact::Artifact& served, const data::Dataset& new_items, ReplayBuffer& buffer,
                          const data::Dataset& gate_set, const data::Dataset& recent, const UpdateOptions& o) {
  validate(o);
  UpdateResult r;
  if (new_items.size() == 0) {
    r.reason_code = "nothing_to_train";
    r.reason = "no new items to train on";
    return r;
  }
  // Classes the served model lacks grow its head (or are left out by the warm start, with a warning).
  const artifact::Artifact* parent = &served;
  artifact::Artifact grown;
  if (o.allow_new_labels) {
    std::set<std::string> known(served.manifest.labels.begin(), served.manifest.labels.end());
    for (const auto& l : new_items.labels) {
      if (known.insert(l).second) r.new_labels.push_back(l);
    }
    if (!r.new_labels.empty()) {
      grown = grow_labels(served, r.new_labels, o.seed);
      parent = &grown;
    }
  }
  // The training mix: the new items and round(new × ratio) replayed ones.
  data::Dataset mix = new_items;
  const auto replay = static_cast<std::size_t>(std::llround(static_cast<double>(new_items.size()) *
                                                            buffer.options().replay_ratio));
  const data::Dataset replayed = buffer.sample(replay);
  for (std::size_t i = 0; i < replayed.size(); ++i) mix.push_back(replayed.example(i));
  r.trained_new = static_cast<int64_t>(new_items.size());
  r.trained_replayed = static_cast<int64_t>(replayed.size());
  for (std::size_t i = 0; i < new_items.size(); ++i) (void)buffer.add(new_items.example(i));

  const auto t0 = std::chrono::steady_clock::now();
  train::TrainerCallbacks callbacks;
  if (o.yield_if) {
    callbacks.on_step = [&o](const train::StepInfo&) {
      if (o.yield_if()) std::this_thread::yield();
    };
  }
  auto result = pipeline::warm_start(*parent, update_config(*parent, buffer, o), mix, nullptr, nullptr, callbacks, o.encode);
  r.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.featurize_seconds = result.featurize_seconds;
  r.warnings = result.warnings;
  r.candidate = std::move(result.artifact);

  GateScores& s = r.scores;
  s.gate_rows = static_cast<int64_t>(gate_set.size());
  s.recent_rows = static_cast<int64_t>(recent.size());
  if (gate_set.size() > 0) {
    const auto by = predicted_labels(served, r.candidate, gate_set, o.encode);
    s.served_gate = macro_f1(gate_set.labels, by.served);
    s.candidate_gate = macro_f1(gate_set.labels, by.candidate);
  }
  if (recent.size() > 0) {
    const auto by = predicted_labels(served, r.candidate, recent, o.encode);
    s.served_recent = macro_f1(recent.labels, by.served);
    s.candidate_recent = macro_f1(recent.labels, by.candidate);
    for (std::size_t i = 0; i < recent.size(); ++i) {
      const bool c = by.candidate[i] == recent.labels[i], v = by.served[i] == recent.labels[i];
      s.candidate_only += c && !v;
      s.served_only += v && !c;
    }
    s.improvement_p = sign_test_p(s.candidate_only, s.served_only);
  }
  if (gate_set.size() == 0) {
    r.reason_code = "empty_gate";
    r.reason = "the gate set is empty (the artifact has no held-out sample and no feedback was held out yet)";
  } else if (100 * (s.served_gate - s.candidate_gate) > o.max_regression) {
    r.reason_code = "regression";
    r.reason = "macro-F1 on the gate set (" + std::to_string(s.gate_rows) + " rows) fell from " + points(s.served_gate) +
               " to " + points(s.candidate_gate) + ", more than the " + points(o.max_regression / 100) +
               " points --max-regression allows";
  } else if (recent.size() == 0) {
    r.reason_code = "no_recent_feedback";
    r.reason = "no held-out feedback yet to show the candidate improves on recent data";
  } else if (!(s.candidate_recent > s.served_recent)) {
    r.reason_code = "no_improvement";
    r.reason = "macro-F1 on the " + std::to_string(s.recent_rows) + " most recent held-out feedback items did not improve (" +
               points(s.served_recent) + " served, " + points(s.candidate_recent) + " candidate)";
  } else if (o.improvement_alpha < 1 && !(s.improvement_p < o.improvement_alpha)) {
    r.reason_code = "no_improvement";
    std::ostringstream p;
    p.precision(3);
    p << s.improvement_p;
    r.reason = "macro-F1 on the " + std::to_string(s.recent_rows) + " most recent held-out feedback items rose (" +
               points(s.served_recent) + " served, " + points(s.candidate_recent) + " candidate) no more than chance would: " +
               "of the items only one model gets right, the candidate gets " + std::to_string(s.candidate_only) +
               " and the served model " + std::to_string(s.served_only) + " (sign test p = " + p.str() +
               ", not below the improvement alpha " + std::to_string(o.improvement_alpha).substr(0, 6) + ")";
  } else {
    r.promoted = true;
  }
  return r;
}

}  // namespace kiln::learn
