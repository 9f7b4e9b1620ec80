#include "kiln/tune/tuner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::tune {
namespace {

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<Trial> best_trial(const std::vector<Trial>& trials, Direction direction) {
  std::optional<Trial> best;
  for (const auto& t : trials) {
    if (t.state != TrialState::kComplete || !t.value || std::isnan(*t.value)) continue;
    if (!best) {
      best = t;
      continue;
    }
    const bool better = direction == Direction::kMaximize ? *t.value > *best->value : *t.value < *best->value;
    if (better || (*t.value == *best->value && t.number < best->number)) best = t;
  }
  return best;
}

void validate(const TunerOptions& o) {
  if (o.n_trials < 0) throw ConfigError("tuner n_trials must be >= 0 (0 = no limit), got " + std::to_string(o.n_trials));
  if (!(o.timeout_s >= 0)) throw ConfigError("tuner timeout must be >= 0 seconds (0 = no limit), got " + num(o.timeout_s));
  if (o.n_trials == 0 && o.timeout_s == 0) {
    throw ConfigError("give a trial count or a timeout (or both): without either, tuning never stops");
  }
  if (o.max_consecutive_failures < 0) {
    throw ConfigError("max consecutive failures must be >= 0 (0 = never stop), got " + std::to_string(o.max_consecutive_failures));
  }
  if (o.jobs < 1 || o.jobs > 1024) throw ConfigError("tuner jobs must be in [1, 1024], got " + std::to_string(o.jobs));
  if (!(o.heartbeat_timeout_s > 0)) {
    throw ConfigError("heartbeat timeout must be > 0 seconds, got " + num(o.heartbeat_timeout_s));
  }
  if (o.heartbeat_interval_s < 0 || (o.heartbeat_interval_s > 0 && o.heartbeat_interval_s >= o.heartbeat_timeout_s)) {
    throw ConfigError("heartbeat interval must be in (0, heartbeat timeout = " + num(o.heartbeat_timeout_s) + ") seconds, got " +
                      num(o.heartbeat_interval_s));
  }
}

// The running trial as the objective sees it.
class Tuner::Context : public TrialContext {
 public:
  Context(Tuner& tuner, Trial trial, std::filesystem::path dir)
      : tuner_(tuner), trial_(std::move(trial)), params_(trial_.external_params()), dir_(std::move(dir)) {}
  const Trial& trial() const override { return trial_; }
  const nlohmann::json& params() const override { return params_; }
  const std::filesystem::path& dir() const override { return dir_; }
  const std::atomic<bool>& interrupted() const override { return tuner_.cancel_; }

  bool report(int64_t step, double value) override {
    if (lost_) return true;
    try {
      tuner_.storage_.report(trial_.id, step, value);
    } catch (const Error&) {
      lost_ = true;  // no longer running: failed as stale by another worker
      return true;
    }
    trial_.intermediate[step] = value;
    tuner_.notify([&] {
      if (tuner_.callbacks_.on_report) tuner_.callbacks_.on_report(trial_, step, value);
    });
    if (!tuner_.pruner_) return false;
    std::vector<Trial> study = tuner_.storage_.trials(tuner_.study_.id);
    for (auto& t : study) {
      if (t.id == trial_.id) t = trial_;
    }
    return tuner_.pruner_(study, trial_, tuner_.study_.direction);
  }

  [[nodiscard]] bool lost() const { return lost_; }

 private:
  Tuner& tuner_;
  Trial trial_;
  nlohmann::json params_;
  std::filesystem::path dir_;
  bool lost_ = false;
};

Tuner::Tuner(Storage& storage, StudyInfo study, SearchSpace space, Sampler& sampler, PruneFn pruner, Objective& objective,
             TunerOptions options, TunerCallbacks callbacks)
    : storage_(storage),
      study_(std::move(study)),
      space_(std::move(space)),
      sampler_(sampler),
      pruner_(std::move(pruner)),
      objective_(objective),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)) {
  validate(options_);
  if (space_.empty()) throw ConfigError("the search space is empty; give at least one parameter");
  for (const auto& [name, d] : space_) distributions_[name] = d;
  heartbeat_interval_ = options_.heartbeat_interval_s > 0 ? options_.heartbeat_interval_s
                                                          : std::min(10.0, options_.heartbeat_timeout_s / 6);
}

void Tuner::notify(const std::function<void()>& call) {
  std::lock_guard<std::mutex> lock(cb_mu_);
  call();
}

TuneSummary Tuner::run(const std::atomic<bool>* interrupt) {
  interrupt_ = interrupt;
  cancel_ = false;
  no_more_ = false;
  finished_ = false;
  summary_ = TuneSummary{};
  consecutive_failures_ = 0;
  start_time_ = unix_now();

  // Trials of workers that died earlier (kill -9, power loss) are failed before anything else.
  const auto stale = storage_.fail_stale_trials(study_.id, options_.heartbeat_timeout_s);
  if (!stale.empty()) notify([&] {
      if (callbacks_.on_stale) callbacks_.on_stale(stale);
    });

  std::exception_ptr error;
  std::mutex error_mu;
  const auto guarded = [&](auto&& body) {
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (!error) error = std::current_exception();
      cancel_ = true;
      no_more_ = true;
    }
  };
  std::thread monitor([&] { guarded([&] { monitor_loop(); }); });
  std::vector<std::thread> workers;
  for (int i = 0; i < options_.jobs; ++i) workers.emplace_back([&] { guarded([&] { worker_loop(); }); });
  for (auto& w : workers) w.join();
  finished_ = true;
  monitor.join();
  if (error) std::rethrow_exception(error);

  summary_.best = best_trial(storage_.trials(study_.id), study_.direction);
  return summary_;
}

void Tuner::monitor_loop() {
  double last_beat = unix_now();
  while (!finished_) {
    sleep_s(0.05);
    const double now = unix_now();
    if (interrupt_ && interrupt_->load() && !cancel_) {
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        summary_.reason = StopReason::kInterrupted;
      }
      no_more_ = true;
      cancel_ = true;
    }
    if (options_.timeout_s > 0 && now - start_time_ >= options_.timeout_s && !no_more_) {
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        summary_.reason = StopReason::kTimeout;
      }
      no_more_ = true;
    }
    if (now - last_beat >= heartbeat_interval_) {
      last_beat = now;
      std::vector<int64_t> ids;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        ids = running_;
      }
      // A trial may have ended since `ids` was copied, and a storage hiccup must not end the run:
      // a missed heartbeat is retried next time, and only a long silence makes a trial stale.
      for (const int64_t id : ids) {
        try {
          storage_.heartbeat(id);
        } catch (const Error&) {
        }
      }
      std::vector<int64_t> stale;
      try {
        stale = storage_.fail_stale_trials(study_.id, options_.heartbeat_timeout_s);
      } catch (const Error&) {
      }
      if (!stale.empty()) notify([&] {
          if (callbacks_.on_stale) callbacks_.on_stale(stale);
        });
    }
  }
}

void Tuner::worker_loop() {
  const auto stop_with = [&](StopReason r) {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (!no_more_) summary_.reason = r;
    no_more_ = true;
  };
  while (!no_more_ && !cancel_) {
    std::optional<Trial> next;
    bool wait = false;
    {
      std::lock_guard<std::mutex> lock(ask_mu_);
      if (no_more_) break;
      const std::vector<Trial> all = storage_.trials(study_.id);
      int64_t done = 0, running = 0;
      for (const auto& t : all) {
        if (t.state == TrialState::kComplete || t.state == TrialState::kPruned) ++done;
        if (t.state == TrialState::kRunning) ++running;
      }
      const int64_t n = options_.n_trials;
      if (n > 0 && done >= n) {
        stop_with(StopReason::kTrials);
        break;
      }
      if (n > 0 && done + running >= n) {
        wait = true;  // the last trials are running (here or elsewhere): they finish, or fail as stale
      } else if (exhausted_ && exhausted_(all)) {
        stop_with(StopReason::kExhausted);
        break;
      } else {
        // trials() is ordered by number, and numbers are gap-free: the next trial gets this one
        // unless another process creates a trial first (see set_sampler_view).
        const int64_t number = all.empty() ? 0 : all.back().number + 1;
        const auto params = sampler_view_ ? sampler_.sample(space_, sampler_view_(all, number), study_.direction)
                                          : sampler_.sample(space_, all, study_.direction);
        Trial created = storage_.create_trial(study_.id, params, distributions_);
        if (!options_.worker.empty()) storage_.set_trial_attr(created.id, "worker", options_.worker);
        if (n > 0) {
          // Another process may have created trials since we counted: the trials numbered before
          // ours that can still count decide whether ours is one too many.
          int64_t before = 0;
          for (const auto& t : storage_.trials(study_.id)) {
            if (t.number < created.number && t.state != TrialState::kFailed) ++before;
          }
          if (before >= n) {
            storage_.set_trial_attr(created.id, "fail_reason",
                                    "not run: the study already had " + std::to_string(n) + " trials (another worker started the last one)");
            (void)storage_.finish_trial(created.id, TrialState::kFailed, std::nullopt);
            wait = true;
          } else {
            next = std::move(created);
          }
        } else {
          next = std::move(created);
        }
      }
    }
    if (next) {
      run_trial(std::move(*next));
    } else if (wait) {
      for (int i = 0; i < 4 && !no_more_ && !cancel_; ++i) sleep_s(0.05);
    }
  }
}

void Tuner::run_trial(Trial trial) {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    running_.push_back(trial.id);
    ++summary_.started;
  }
  notify([&] {
    if (callbacks_.on_trial_start) callbacks_.on_trial_start(trial);
  });
  std::filesystem::path dir;
  if (!options_.trials_dir.empty()) {
    char name[32];
    std::snprintf(name, sizeof name, "trial-%05lld", static_cast<long long>(trial.number));
    dir = options_.trials_dir / name;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw IoError("cannot create the trial directory " + dir.string() + ": " + ec.message());
  }
  Context ctx(*this, trial, dir);
  ObjectiveResult r;
  try {
    r = objective_.run(ctx);
  } catch (const Error& e) {
    r = ObjectiveResult::failed(e.what());
  } catch (const std::exception& e) {
    r = ObjectiveResult::failed(std::string("internal error in the objective: ") + e.what());
  }
  if (r.state == TrialState::kRunning) r = ObjectiveResult::failed("the objective returned the state running");
  if (r.state == TrialState::kComplete && (!r.value || std::isnan(*r.value))) {
    r = ObjectiveResult::failed("the objective returned no value");
  }
  if (r.state == TrialState::kFailed && r.fail_reason.empty()) r.fail_reason = cancel_ ? "interrupted" : "unknown";
  if (!ctx.lost()) {
    for (const auto& [key, value] : r.attrs) storage_.set_trial_attr(trial.id, key, value);
    if (r.state == TrialState::kFailed) storage_.set_trial_attr(trial.id, "fail_reason", r.fail_reason);
    (void)storage_.finish_trial(trial.id, r.state, r.value);
  }
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    running_.erase(std::remove(running_.begin(), running_.end(), trial.id), running_.end());
    switch (r.state) {
      case TrialState::kComplete: ++summary_.completed; break;
      case TrialState::kPruned: ++summary_.pruned; break;
      default: ++summary_.failed; break;
    }
    consecutive_failures_ = r.state == TrialState::kFailed && !cancel_ ? consecutive_failures_ + 1 : 0;
    if (options_.max_consecutive_failures > 0 && consecutive_failures_ >= options_.max_consecutive_failures && !no_more_) {
      summary_.reason = StopReason::kFailures;
      no_more_ = true;
    }
    if (r.config_error && summary_.config_error.empty()) {
      summary_.config_error = "trial " + std::to_string(trial.number) + ": " + r.fail_reason;
      summary_.reason = StopReason::kConfigError;
      no_more_ = true;
      cancel_ = true;
    }
  }
  const Trial stored = storage_.trial(trial.id);
  notify([&] {
    if (callbacks_.on_trial_end) callbacks_.on_trial_end(stored);
  });
}

}  // namespace kiln::tune
