// The tuning loop: asks the sampler for parameters, records trials in the study storage, runs the
// objective, prunes through the pruner, keeps heartbeats, and stops on a trial count, a time limit,
// an exhausted space or an interrupt. Strategy (sampler, pruner) and objective are plugged in; the
// loop owns time, storage and parallelism. It never prints: the CLI draws from the callbacks.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/objective.h"
#include "kiln/tune/sampler.h"
#include "kiln/tune/storage.h"
#include "kiln/tune/study.h"

namespace kiln::tune {

/// Whether a running trial should stop now, given every trial of the study (the judged one with
/// its latest report included). A Pruner's should_prune, bound; empty = never prune.
using PruneFn = std::function<bool(const std::vector<Trial>& study, const Trial& trial, Direction direction)>;
/// Whether the sampler has nothing left to propose (a finished grid), given the study's trials.
/// Empty = never.
using ExhaustedFn = std::function<bool(const std::vector<Trial>& study)>;
/// The trials the sampler sees when proposing parameters for the trial numbered `number`, given
/// every trial of the study; empty = all of them. Under Hyperband: HyperbandPruner::bracket_trials,
/// as Optuna shows samplers only the new trial's bracket.
using SamplerViewFn = std::function<std::vector<Trial>(const std::vector<Trial>& study, int64_t number)>;

struct TunerOptions {
  /// Stop when the study (all workers, earlier runs included) holds this many complete + pruned
  /// trials; a resumed study runs only the rest. 0 = no limit (then timeout_s should be set).
  /// Default 50.
  int64_t n_trials = 50;
  /// Start no new trial after this many seconds; running trials finish. 0 = no limit. Default 0.
  double timeout_s = 0;
  /// Trials run at once by this process (worker threads). >= 1. Default 1.
  int jobs = 1;
  /// A running trial whose heartbeat is older than this (seconds) belongs to a dead worker: any
  /// worker marks it failed. > 0. Default 60.
  double heartbeat_timeout_s = 60;
  /// Seconds between heartbeats of this worker's running trials (and checks for stale trials);
  /// 0 = heartbeat_timeout_s / 6, at most 10. Must be < heartbeat_timeout_s. Default 0.
  double heartbeat_interval_s = 0;
  /// Stop after this many trials of this process failed in a row (a broken objective would
  /// otherwise fail forever, failed trials not counting toward n_trials); 0 = never. Default 5.
  int max_consecutive_failures = 5;
  /// Parent of the per-trial directories (trial-00007/); empty = trials get no directory.
  std::filesystem::path trials_dir;
  /// Stored as each trial's "worker" attribute (host:pid by default in the CLI).
  std::string worker;
};

/// Throws ConfigError naming the field and the value.
void validate(const TunerOptions& options);

/// Progress hooks, for the live table. Called one at a time (never concurrently), from worker
/// threads.
struct TunerCallbacks {
  std::function<void(const Trial&)> on_trial_start;
  /// The trial as stored after it ended (state, value, attributes such as "fail_reason").
  std::function<void(const Trial&)> on_trial_end;
  std::function<void(const Trial&, int64_t step, double value)> on_report;
  /// Numbers of running trials of dead workers just marked failed.
  std::function<void(const std::vector<int64_t>&)> on_stale;
};

enum class StopReason { kTrials = 0, kTimeout = 1, kExhausted = 2, kInterrupted = 3, kConfigError = 4, kFailures = 5 };

struct TuneSummary {
  StopReason reason = StopReason::kTrials;
  /// Trials this process ran, by how they ended.
  int64_t started = 0, completed = 0, pruned = 0, failed = 0;
  /// The study's best complete trial (all workers), if any.
  std::optional<Trial> best;
  /// For kConfigError: the objective's message (the loop stops at the first one).
  std::string config_error;
};

class Tuner {
 public:
  /// The references must outlive run(). `sampler` is called under the loop's lock.
  Tuner(Storage& storage, StudyInfo study, SearchSpace space, Sampler& sampler, PruneFn pruner, Objective& objective,
        TunerOptions options, TunerCallbacks callbacks = {});

  /// Only one run at a time per Tuner.
  void set_exhausted(ExhaustedFn exhausted) { exhausted_ = std::move(exhausted); }
  /// Only one run at a time per Tuner. The sampler proposes for a trial before it exists, so the
  /// view is asked for the number the trial will get: the study's last number + 1, exact while this
  /// process creates trials (one at a time, under the loop's lock). When another process creates
  /// one in between, the trial gets the next free number as always (numbers stay unique and
  /// gap-free) and runs with the parameters proposed from the predicted number's view.
  void set_sampler_view(SamplerViewFn view) { sampler_view_ = std::move(view); }

  /// Runs trials until a stop condition. `interrupt` (may be null) is polled: once true, running
  /// trials are stopped and marked failed with reason "interrupted", and run returns.
  /// Throws what the storage throws; objective errors fail their trial instead.
  [[nodiscard]] TuneSummary run(const std::atomic<bool>* interrupt = nullptr);

 private:
  class Context;
  void worker_loop();
  void run_trial(Trial trial);
  void monitor_loop();
  void notify(const std::function<void()>& call);

  Storage& storage_;
  StudyInfo study_;
  SearchSpace space_;
  std::map<std::string, Distribution> distributions_;
  Sampler& sampler_;
  PruneFn pruner_;
  Objective& objective_;
  TunerOptions options_;
  TunerCallbacks callbacks_;
  ExhaustedFn exhausted_;
  SamplerViewFn sampler_view_;
  double heartbeat_interval_ = 10;

  const std::atomic<bool>* interrupt_ = nullptr;
  std::atomic<bool> cancel_{false};     // stop running trials now (interrupt, config error)
  std::atomic<bool> no_more_{false};    // start no new trial
  std::atomic<bool> finished_{false};   // workers are done: the monitor stops
  double start_time_ = 0;
  std::mutex ask_mu_;                   // sampler + trial creation
  std::mutex state_mu_;                 // summary_, running_
  std::mutex cb_mu_;                    // callbacks one at a time
  std::vector<int64_t> running_;        // ids of this process's running trials
  int consecutive_failures_ = 0;
  TuneSummary summary_;
};

/// The best complete trial by `direction` (ties: the lower number), if any.
[[nodiscard]] std::optional<Trial> best_trial(const std::vector<Trial>& trials, Direction direction);

/// Unix time in seconds, the clock trials are stamped with.
[[nodiscard]] double unix_now();

}  // namespace kiln::tune
