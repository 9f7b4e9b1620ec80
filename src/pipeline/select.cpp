#include "kiln/pipeline/select.h"

#include <chrono>
#include <condition_variable>
#include <exception>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <thread>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include <ATen/Parallel.h>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/parallel.h"
#include "kiln/data/stratified_split.h"
#include "kiln/nn/ensemble.h"
#include "kiln/prep/ensemble.h"
#include "kiln/prep/preprocessor.h"
#include "kiln/train/calibration.h"
#include "kiln/tune/hyperband_pruner.h"
#include "stages.h"

namespace kiln::pipeline {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string percent(double share) {
  char b[32];
  std::snprintf(b, sizeof b, "%g%%", share * 100);
  return b;
}


// A candidate's trained state, kept while it is the best so far.
struct Trained {
  Setup setup;
  Encoded encoded;
  train::TrainResult result;
  double featurize_seconds = 0, train_seconds = 0;
  std::size_t index = 0;
};

// Logits of `model` on `x` [examples, classes], float64 on the CPU (InferenceMode, eval mode).
torch::Tensor logits_of(nn::Model& model, const nn::Batch& x, int64_t chunk) {
  const torch::InferenceMode guard;
  model.eval();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < x.size(); start += chunk) {
    parts.push_back(model.forward(x.slice(start, std::min(chunk, x.size() - start))).to(torch::kCPU));
  }
  return torch::cat(parts, 0).to(torch::kFloat64);
}

// A member's own temperature on the validation split (1 when the split is separable).
double member_temperature(const torch::Tensor& logits, const std::vector<int64_t>& y) {
  const auto fit = train::fit_temperature(logits, y);
  return fit.separable ? 1.0 : fit.temperature;
}

// `a`'s and `b`'s tensors in one batch, each under its ensemble member prefix.
nn::Batch prefixed(const nn::Batch& a, const nn::Batch& b) {
  nn::Batch out(a.size());
  for (const auto& [name, t] : a.tensors()) out.set(prep::ensemble_member_prefix(0) + name, t);
  for (const auto& [name, t] : b.tensors()) out.set(prep::ensemble_member_prefix(1) + name, t);
  return out;
}

}  // namespace

std::vector<Candidate> default_candidates() {
  return {{"fasttext", train::preset_config("fasttext")},
          {"logreg", train::preset_config("logreg")},
          {"mlp", train::preset_config("mlp")}};
}

double default_budget(const std::vector<Candidate>& candidates) {
  double total = 0;
  for (const auto& c : candidates) total += c.config.trainer.epochs;
  return total;
}

// The nice value of candidate 2's thread when it trains beside candidate 1 (see select_model):
// Brown (seed 42 split, medians of 2) 7.93 s at 0, 7.83 s at 5, 7.30 s at 10, 7.32 s at 19 and
// at idle priority.
constexpr int kLane2Nice = 10;

/// CPU seconds of the calling thread.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

SelectionResult select_model(const SelectionOptions& options, const data::Dataset& train, const data::Dataset* val,
                             const data::Dataset* test, const SelectionCallbacks& callbacks) {
  if (options.candidates.empty()) throw ConfigError("model selection needs at least one candidate");
  if (!(options.budget > 0) || !std::isfinite(options.budget)) {
    throw ConfigError("--budget must be a number of passes over the training set > 0, got " +
                      std::to_string(options.budget));
  }
  if (options.max_seconds < 0) throw ConfigError("--max-time must be >= 0");
  if (options.reduction_factor < 2) throw ConfigError("selection reduction_factor must be >= 2");
  if (options.keep_at_rungs < 1) {
    throw ConfigError("selection keep_at_rungs must be >= 1 (1: successive halving alone), got " +
                      std::to_string(options.keep_at_rungs));
  }
  if (options.min_resource_epochs < 1) throw ConfigError("selection min_resource_epochs must be >= 1");
  for (const auto& c : options.candidates) train::validate(c.config.trainer);
  const auto labels = training_labels(train);
  const auto t_start = std::chrono::steady_clock::now();

  SelectionResult out;
  out.budget = options.budget;
  // Validation: the given set, or a stratified share of the training rows.
  data::Dataset train_rows, carved;
  const data::Dataset* fit_on = &train;
  const data::Dataset* val_on = val;
  if (val && val->size() > 0) {
    out.validation = "the given validation set (" + std::to_string(val->size()) + " rows)";
  } else {
    data::SplitOptions so;
    so.test_size = options.val_share;
    so.seed = options.candidates.front().config.data.seed;
    so.rare_classes = data::RareClassPolicy::kTrainOnly;
    data::SplitResult split;
    try {
      split = data::stratified_split(train.labels, so);
    } catch (const Error& e) {
      throw DataError(std::string("model selection needs a validation split and none could be carved from the training "
                                  "rows (") + e.what() + "); give --val FILE or choose a model with --model NAME");
    }
    train_rows = train.select(split.train);
    train_rows.base_dir = train.base_dir;
    carved = train.select(split.test);
    carved.base_dir = train.base_dir;
    fit_on = &train_rows;
    val_on = &carved;
    out.validation = std::to_string(carved.size()) + " rows (" + percent(options.val_share) +
                     " of the training rows, stratified, seed " + std::to_string(so.seed) + ") held out for validation";
  }
  const double n_train = static_cast<double>(fit_on->size());

  tune::SuccessiveHalvingPrunerOptions po;
  po.min_resource = options.min_resource_epochs;
  po.reduction_factor = options.reduction_factor;
  const tune::SuccessiveHalvingPruner pruner(po);
  // Only an ensemble can use a second candidate.
  const int keep_top = options.ensemble == SelectionOptions::EnsemblePolicy::kNever ? 1 : options.keep_at_rungs;
  const std::size_t n_cand = options.candidates.size();

  // Candidate 0 may train on a thread of its own while the others train one after another on this
  // one, with the same results as training all of them in turn: the first candidate is never
  // pruned and its budget check counts no earlier work, so nothing the others do changes it; the
  // others read candidate 0 only at pruning rungs (its validation macro-F1 at that epoch: they wait
  // until it has reported that epoch or finished) and for the budget (they wait for its final
  // epoch count only when its maximum could matter). Only when candidate 0's trainer draws nothing
  // from LibTorch's global generator during training (the per-example and L-BFGS solvers: no
  // dropout, no sampling) while the others' do, with more than one thread, and without a
  // wall-clock cap (whose cuts depend on timing anyway).
  const bool concurrent = options.overlap_first && n_cand >= 2 && core::threads() >= 2 && options.max_seconds == 0 &&
                          options.candidates[0].config.trainer.solver != "minibatch";
  // Candidate 2 may train on a second thread of its own beside candidate 1 (on this one) on the same
  // terms: candidate 1's trainer draws nothing from the global generator either (candidate 2, the
  // only one that may, keeps its draws in its own order), it waits at its rungs for candidates 0
  // and 1 as above, and the three candidates' epochs fit the budget together, so that no budget
  // check depends on how far the others got. Candidate 1 waited at its rungs for candidate 0 with
  // a core idle (Brown: 2.6 s of its 6.4 s), and candidate 2 started only after it.
  const auto max_epochs = [&](std::size_t j) { return static_cast<double>(options.candidates[j].config.trainer.epochs); };
  const bool concurrent2 = concurrent && n_cand >= 3 && options.candidates[1].config.trainer.solver != "minibatch" &&
                           max_epochs(0) + max_epochs(1) + max_epochs(2) <= options.budget + 1e-9;
  std::vector<CandidateReport> reps(n_cand);
  std::vector<std::optional<Trained>> trained(n_cand);
  std::vector<tune::Trial> trials(n_cand);
  for (std::size_t k = 0; k < n_cand; ++k) {
    trials[k].id = static_cast<int64_t>(k);
    trials[k].number = static_cast<int64_t>(k);
  }
  std::mutex mu;  // guards trials, reps, reported and finished while candidates train on other threads
  std::condition_variable cv;
  std::vector<int> reported(n_cand, 0);   // the last epoch each candidate reported
  std::vector<char> finished(n_cand, 0);  // its record is final (trained, pruned, stopped, skipped or failed)
  // Pacing (concurrent2 with two threads: three candidates on two cores). Without it the third
  // thread, at a lower priority, got the cores only when another candidate finished, and then
  // trained alone with a core idle (WordNet: the MLP's last 5 epochs, 5.5 s of an 18.5 s
  // selection). A candidate that reaches an epoch's end while both others are training, with the
  // least training left of the three (its epochs left times its CPU seconds an epoch so far), waits
  // there until one of them finishes, waits at a rung, or is estimated to have less left: two
  // threads train at a time, and the longest work first. Only the timing changes: every candidate
  // trains as it would alone.
  std::vector<char> training(n_cand, 0);   // training and not waiting (at a rung or for pacing)
  std::vector<double> left(n_cand, std::numeric_limits<double>::infinity());  // estimated CPU seconds
  bool cut_by_time = false;

  // While candidate 0 trains, its thread has a core to itself: this thread's LibTorch loops and the
  // BLAS run one thread short. Two teams on two cores left the second core's thread time-sliced with
  // candidate 0, and each parallel loop waited for it (Brown's logreg: 9.0 s beside fasttext, against
  // about 7 s alone at one thread). The caller's count comes back when candidate 0 is done.
  const int all_threads = at::get_num_threads();  // this thread's team, as the caller left it
  bool sharing = false;
  auto share_cores = [&](bool share) {
    if (share == sharing || all_threads < 2) return;  // a one-thread team has nothing to give
    sharing = share;
    const int n = share ? std::max(1, all_threads - 1) : all_threads;
    core::set_openmp_threads(n);
    core::set_blas_threads(n);
  };
  auto reclaim_cores_when_lane_done = [&] {
    if (!sharing) return;
    std::lock_guard<std::mutex> lock(mu);
    if (finished[0] && (!concurrent2 || finished[2])) share_cores(false);
  };

  // Whether candidates before k (in training order) with `more` passes of k exceed the budget. One
  // still training counts its most epochs; only when that could matter does this wait for its count.
  auto over_budget = [&](std::size_t k, double more) {
    std::unique_lock<std::mutex> lock(mu);
    double bound = 0;
    for (std::size_t j = 0; j < k; ++j) bound += finished[j] ? reps[j].work : max_epochs(j);
    if (bound + more <= options.budget + 1e-9) return false;
    cv.wait(lock, [&] { return std::all_of(finished.begin(), finished.begin() + static_cast<std::ptrdiff_t>(k), [](char f) { return f != 0; }); });
    double others = 0;
    for (std::size_t j = 0; j < k; ++j) others += reps[j].work;
    return others + more > options.budget + 1e-9;
  };
  auto is_rung = [&](int epoch) {
    for (int64_t r = options.min_resource_epochs; r <= epoch; r *= options.reduction_factor) {
      if (r == epoch) return true;
    }
    return false;
  };
  // Records candidate k's epoch and asks the pruner, against candidates 0..k as a run in turn sees them.
  auto prune = [&](std::size_t k, const train::EpochRecord& rec) {
    std::vector<tune::Trial> study;
    {
      std::unique_lock<std::mutex> lock(mu);
      trials[k].intermediate[rec.epoch] = rec.val_macro_f1;
      reported[k] = rec.epoch;  // its value at this epoch is settled: candidates waiting at a rung may go on
      cv.notify_all();
      if (concurrent && k > 0 && is_rung(rec.epoch)) {
        const char was_training = training[k];
        training[k] = 0;  // a candidate waiting for pacing may take this core meanwhile
        cv.notify_all();
        cv.wait(lock, [&] {
          for (std::size_t j = 0; j < k; ++j) {
            if (!finished[j] && reported[j] < rec.epoch) return false;
          }
          return true;
        });
        training[k] = was_training;
      }
      study.assign(trials.begin(), trials.begin() + static_cast<std::ptrdiff_t>(k) + 1);
    }
    if (!pruner.should_prune(study, study.back(), tune::Direction::kMaximize)) return false;
    if (keep_top <= 1 || !is_rung(rec.epoch)) return true;
    // The selection may end with the mean of the two best: a candidate still among the best
    // keep_top at this rung stays, or the pair would lose a member before it is scored
    // (SelectionOptions::keep_at_rungs).
    std::size_t ahead = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const auto it = study[j].intermediate.find(rec.epoch);
      if (it != study[j].intermediate.end() && it->second > rec.val_macro_f1) ++ahead;
    }
    return ahead >= static_cast<std::size_t>(keep_top);
  };

  // Pacing at the end of candidate k's epoch `epoch`, after `cpu` seconds of its thread's CPU time
  // in training (see `training` above).
  // Only where two threads are all there is: with a core for each candidate none should wait.
  const bool pacing = concurrent2 && core::threads() < 3;
  auto pace = [&](std::size_t k, int epoch, double cpu) {
    if (!pacing) return;
    std::unique_lock<std::mutex> lock(mu);
    left[k] = epoch > 0 ? (max_epochs(k) - epoch) * cpu / epoch : std::numeric_limits<double>::infinity();
    cv.notify_all();  // a candidate waiting for pacing compares against the new estimate
    auto wait_here = [&] {
      int others = 0;
      for (std::size_t j = 0; j < n_cand; ++j) {
        if (j == k || finished[j] || !training[j]) continue;
        ++others;
        if (left[j] < left[k]) return false;
      }
      return others >= 2;
    };
    if (!wait_here()) return;
    training[k] = 0;
    cv.notify_all();
    cv.wait(lock, [&] { return !wait_here(); });
    training[k] = 1;
  };

  // The splits encoded for prepared candidate t. Throws DataError.
  auto encode = [&](Trained& t, std::chrono::steady_clock::time_point t0) {
    t.encoded = encode_splits(t.setup, val_on);
    t.featurize_seconds = seconds_since(t0);
    if (!t.encoded.has_val) throw DataError("the validation split has no row with a label of the training set");
  };
  // Candidate k up to training: fitted preprocessors, the model built and seeded (LibTorch's global
  // generator: always on this thread), and unless `encoded` is false the splits encoded. Throws
  // ConfigError and Error.
  auto prepare = [&](std::size_t k, std::chrono::steady_clock::time_point t0, bool encoded = true) {
    train::RunConfig cfg = options.candidates[k].config;
    cfg.trainer.run_dir.clear();  // candidates keep their weights in memory; no checkpoints
    cfg.trainer.resume = false;
    Trained t;
    t.index = k;
    t.setup = fit_setup(cfg, *fit_on, labels);
    if (encoded) encode(t, t0);
    return t;
  };
  // Records candidate k as failed before training.
  auto fail_candidate = [&](std::size_t k, const Error& e, std::chrono::steady_clock::time_point t0) {
    std::lock_guard<std::mutex> lock(mu);
    trials[k].state = tune::TrialState::kFailed;
    reps[k] = CandidateReport{options.candidates[k].name, std::string("failed: ") + e.what(), 0, 0, kNaN,
                              seconds_since(t0), 0, train::to_json(options.candidates[k].config)};
    finished[k] = 1;
    cv.notify_all();
  };
  // Trains prepared candidate k; fills reps[k] (and trained[k]). Throws ConfigError.
  auto train_candidate = [&](std::size_t k, Trained t, std::chrono::steady_clock::time_point t0, bool quiet) {
    const Candidate& cand = options.candidates[k];
    CandidateReport rep;
    rep.name = cand.name;
    rep.val_macro_f1 = kNaN;
    rep.config = train::to_json(cand.config);
    try {
      train::TrainerCallbacks cb = !quiet && callbacks.trainer ? callbacks.trainer(cand) : train::TrainerCallbacks{};
      std::string stop_reason;
      const double cpu0 = thread_cpu_seconds();
      {
        std::lock_guard<std::mutex> lock(mu);
        training[k] = 1;
      }
      cb.should_stop = [&](const train::EpochRecord& rec) {
        if (k > 0 && !(concurrent2 && k == 2)) reclaim_cores_when_lane_done();  // this thread's team, not a lane's
        if (prune(k, rec)) {
          stop_reason = "pruned at epoch " + std::to_string(rec.epoch);
          return true;
        }
        if (over_budget(k, rec.epoch + 1)) {
          stop_reason = "stopped: budget";
          return true;
        }
        if (options.max_seconds > 0 && seconds_since(t_start) >= options.max_seconds) {
          stop_reason = "stopped: --max-time";
          std::lock_guard<std::mutex> lock(mu);
          cut_by_time = true;
          return true;
        }
        pace(k, rec.epoch, thread_cpu_seconds() - cpu0);
        return false;
      };
      const auto t1 = std::chrono::steady_clock::now();
      t.result = train::train_model(*t.setup.model, t.encoded.train, &t.encoded.val,
                                    static_cast<int64_t>(labels.size()), t.setup.config.trainer, cb);
      t.train_seconds = seconds_since(t1);
      rep.epochs = static_cast<int>(t.result.history.size());
      rep.best_epoch = t.result.best_epoch;
      rep.val_macro_f1 = t.result.best_val_macro_f1;
      rep.work = rep.epochs;
      rep.status = t.result.stopped_by_callback ? stop_reason : "complete";
      {
        std::lock_guard<std::mutex> lock(mu);
        auto& tr = trials[k];
        tr.state = t.result.stopped_by_callback && stop_reason.rfind("pruned", 0) == 0 ? tune::TrialState::kPruned
                                                                                        : tune::TrialState::kComplete;
        tr.value = rep.val_macro_f1;
      }
      rep.seconds = seconds_since(t0);
      trained[k] = std::move(t);
    } catch (const ConfigError&) {
      throw;  // a bad candidate config is the user's to fix, not a failed candidate
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mu);
      trials[k].state = tune::TrialState::kFailed;
      rep.status = std::string("failed: ") + e.what();
      rep.seconds = seconds_since(t0);
    }
    std::lock_guard<std::mutex> lock(mu);
    reps[k] = std::move(rep);
    finished[k] = 1;
    training[k] = 0;
    cv.notify_all();
  };
  // Prepares and trains candidate k on this thread.
  auto run_candidate = [&](std::size_t k) {
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Trained> t;
    try {
      t = prepare(k, t0);
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      fail_candidate(k, e, t0);
      return;
    }
    train_candidate(k, std::move(*t), t0, /*quiet=*/false);
  };

  struct Reclaim {  // also when this thread throws
    std::function<void()> reclaim;
    ~Reclaim() { reclaim(); }
  } reclaim{[&] { share_cores(false); }};
  std::thread lane, lane2;
  std::exception_ptr lane_error, lane2_error;
  // The body of a candidate's own thread: one OpenMP thread, its encoding unless done already, its
  // training; an exception kept in `error` for this thread to rethrow; its record final at the end.
  auto run_on_lane = [&](std::size_t k, Trained t, std::chrono::steady_clock::time_point t0, bool encode_here,
                         std::exception_ptr& error) {
    try {
      at::parallel_for(0, 1, 1, [](int64_t, int64_t) {});
      core::set_openmp_threads(1);
      bool ready = true;
      if (encode_here) {
        try {
          encode(t, t0);
        } catch (const ConfigError&) {
          throw;
        } catch (const Error& e) {
          fail_candidate(k, e, t0);
          ready = false;
        }
      }
      if (ready) train_candidate(k, std::move(t), t0, /*quiet=*/true);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    finished[k] = 1;
    cv.notify_all();
  };
  if (concurrent) {
    if (callbacks.on_start) callbacks.on_start(options.candidates[0]);
    const auto t0 = std::chrono::steady_clock::now();
    // Its encoding too moves to its thread (this one goes on to the next candidate's features), unless
    // a preprocessor augments (draws from the global generator while encoding).
    std::optional<Trained> t0_prepared;
    bool encode_on_lane = false;
    try {
      t0_prepared = prepare(0, t0, /*encoded=*/false);
      encode_on_lane = !prep::any_augments(t0_prepared->setup.preprocessors);
      if (!encode_on_lane) encode(*t0_prepared, t0);
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      fail_candidate(0, e, t0);
      t0_prepared.reset();
    }
    if (t0_prepared) {
      at::parallel_for(0, 1, 1, [](int64_t, int64_t) {});  // LibTorch's lazy per-thread set-up first
      share_cores(true);
      lane = std::thread([&, t = std::move(*t0_prepared), t0, encode_on_lane]() mutable {
        run_on_lane(0, std::move(t), t0, encode_on_lane, lane_error);
      });
    }
  }
  // Candidate 2's lane, started next to candidate 1 (concurrent2): prepared on this thread (the model
  // seeded from the global generator, as every candidate's), encoded and trained on its own.
  auto start_lane2 = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    if (callbacks.on_start) callbacks.on_start(options.candidates[2]);
    std::optional<Trained> prepared;
    try {
      prepared = prepare(2, t0, /*encoded=*/false);
    } catch (const ConfigError&) {
      throw;
    } catch (const Error& e) {
      fail_candidate(2, e, t0);
      return;
    }
    lane2 = std::thread([&, t = std::move(*prepared), t0]() mutable {
      // It runs mostly on what the other two leave: candidate 0 is the longest here (fasttext
      // beside logreg and the MLP), and sharing its core with a third thread at equal priority made
      // the whole run slower (Brown, before the SGD solver's prefetching: 10.8 s against 9.4 s in
      // turn). At a lower priority it fills
      // the gaps where candidate 1 waits at a rung; not at idle priority, which another process's
      // load (a loaded CI machine) could starve for as long as that load lasts.
#ifdef __linux__
      (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kLane2Nice);
#endif
      run_on_lane(2, std::move(t), t0, /*encode_here=*/true, lane2_error);
    });
  };
  // Joins the lane (also when this thread throws: its training reads this frame).
  struct Joiner {
    std::thread& t;
    ~Joiner() {
      if (t.joinable()) t.join();
    }
  } joiner{lane}, joiner2{lane2};
  // If this thread throws, lanes waiting at a rung for a candidate of this thread go on (their
  // results are discarded), before the joiners wait for them.
  struct Release {
    std::function<void()> release;
    ~Release() { release(); }
  } release{[&] {
    std::lock_guard<std::mutex> lock(mu);
    std::fill(finished.begin(), finished.end(), 1);
    cv.notify_all();
  }};
  for (std::size_t k = concurrent ? 1 : 0; k < n_cand; ++k) {
    if (concurrent2 && k == 2) {
      if (lane2.joinable()) lane2.join();
      if (lane2_error) std::rethrow_exception(lane2_error);
      if (callbacks.on_done) callbacks.on_done(reps[2]);
      continue;
    }
    reclaim_cores_when_lane_done();
    const Candidate& cand = options.candidates[k];
    if (over_budget(k, 1.0)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        reps[k] = CandidateReport{cand.name, "skipped: budget", 0, 0, kNaN, 0, 0, train::to_json(cand.config)};
        finished[k] = 1;
      }
      if (callbacks.on_done) callbacks.on_done(reps[k]);
      continue;
    }
    // The first candidate always starts: a cap cuts the race, it does not leave the user without a model.
    bool any_trained = false;
    for (std::size_t j = 0; j < k; ++j) any_trained = any_trained || trained[j].has_value();
    if (any_trained && options.max_seconds > 0 && seconds_since(t_start) >= options.max_seconds) {
      reps[k] = CandidateReport{cand.name, "skipped: --max-time", 0, 0, kNaN, 0, 0, train::to_json(cand.config)};
      finished[k] = 1;
      cut_by_time = true;
      if (callbacks.on_done) callbacks.on_done(reps[k]);
      continue;
    }
    if (callbacks.on_start) callbacks.on_start(cand);
    if (concurrent2 && k == 1) {
      // Candidate 1 prepared first, then candidate 2's lane started, then candidate 1 trained here.
      const auto t0 = std::chrono::steady_clock::now();
      std::optional<Trained> t;
      try {
        t = prepare(1, t0);
      } catch (const ConfigError&) {
        throw;
      } catch (const Error& e) {
        fail_candidate(1, e, t0);
      }
      start_lane2();
      if (t) train_candidate(1, std::move(*t), t0, /*quiet=*/false);
    } else {
      run_candidate(k);
    }
    if (callbacks.on_done) callbacks.on_done(reps[k]);
  }
  if (lane.joinable()) lane.join();
  if (lane_error) std::rethrow_exception(lane_error);
  if (concurrent && callbacks.on_done) callbacks.on_done(reps[0]);
  out.cut_by_time = cut_by_time;

  // The best and the runner-up, in training order (ties keep the earlier candidate).
  std::optional<Trained> best, second;
  double best_score = -1, second_score = -1;
  for (std::size_t k = 0; k < n_cand; ++k) {
    out.work += reps[k].work;
    out.candidates.push_back(reps[k]);
    if (!trained[k]) continue;
    const double score = reps[k].val_macro_f1;
    if (score > best_score) {
      if (options.ensemble != SelectionOptions::EnsemblePolicy::kNever && best) {
        second = std::move(best);
        second_score = best_score;
      }
      best_score = score;
      best = std::move(trained[k]);
    } else if (options.ensemble != SelectionOptions::EnsemblePolicy::kNever && score > second_score) {
      second_score = score;
      second = std::move(trained[k]);
    }
  }
  if (!best) {
    std::string why;
    for (const auto& c : out.candidates) why += (why.empty() ? "" : "; ") + c.name + ": " + c.status;
    throw Error("model selection: no candidate trained (" + why + "); raise --budget or choose one with --model NAME");
  }
  out.chosen = options.candidates[best->index].name;
  out.candidates[best->index].status = "chosen";
  (void)n_train;

  // The ensemble of the two best: each member calibrated on validation by its own temperature,
  // their probabilities averaged. It replaces the best single model when its validation macro-F1 is
  // higher; it costs no training (both members are trained already).
  std::optional<Setup> ensemble_setup;
  std::optional<Encoded> ensemble_encoded;
  nlohmann::json ensemble_record;
  if (second && best->setup.preprocessors.size() == 1 && second->setup.preprocessors.size() == 1) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto classes = static_cast<int64_t>(labels.size());
    const int64_t chunk = train::eval_chunk(best->setup.config.trainer.batch_size);
    const auto& y = best->encoded.val.y;
    const torch::Tensor la = logits_of(*best->setup.model, best->encoded.val.x, chunk);
    const torch::Tensor lb = logits_of(*second->setup.model, second->encoded.val.x, chunk);
    const double ta = member_temperature(la, y), tb = member_temperature(lb, y);
    const torch::Tensor pa = torch::softmax(la / ta, 1), pb = torch::softmax(lb / tb, 1);
    const double single = train::compute_metrics_from_proba(y, pa, classes).macro_f1;
    const double mixed = train::compute_metrics_from_proba(y, (pa + pb) * 0.5, classes).macro_f1;
    const std::string a = options.candidates[best->index].name, b = options.candidates[second->index].name;
    CandidateReport rep;
    rep.name = "ensemble";
    rep.val_macro_f1 = mixed;
    rep.epochs = 0;
    rep.config = {{"members", {a, b}}, {"temperatures", {ta, tb}}, {"weights", {0.5, 0.5}}};
    if (mixed > single || options.ensemble == SelectionOptions::EnsemblePolicy::kAlways) {
      nn::Ensemble ens = nn::make_ensemble({{best->setup.model, best->setup.model_spec, ta, 0.5},
                                            {second->setup.model, second->setup.model_spec, tb, 0.5}},
                                           classes);
      Setup s = best->setup;
      s.preprocessors = {prep::make_ensemble_preprocessor({best->setup.preprocessors[0], second->setup.preprocessors[0]})};
      s.model_spec = ens.spec;
      s.model = ens.model;
      Encoded e = best->encoded;
      e.train.x = prefixed(best->encoded.train.x, second->encoded.train.x);
      e.train.augment = {};
      e.val.x = prefixed(best->encoded.val.x, second->encoded.val.x);
      ensemble_setup = std::move(s);
      ensemble_encoded = std::move(e);
      out.candidates[best->index].status = "ensemble member";
      out.candidates[second->index].status = "ensemble member";
      rep.status = "chosen";
      out.chosen = "ensemble";
    } else {
      rep.status = "not better than " + a;
    }
    rep.seconds = seconds_since(t0);
    ensemble_record = {{"members", {a, b}},
                       {"temperatures", {ta, tb}},
                       {"weights", {0.5, 0.5}},
                       {"val_macro_f1", mixed},
                       {"best_single_val_macro_f1", single},
                       {"chosen", out.chosen == "ensemble"}};
    out.candidates.push_back(rep);
    if (callbacks.on_done) callbacks.on_done(rep);
  }

  nlohmann::json table = nlohmann::json::array();
  for (const auto& c : out.candidates) {
    table.push_back({{"name", c.name},
                     {"status", c.status},
                     {"epochs", c.epochs},
                     {"best_epoch", c.best_epoch},
                     {"val_macro_f1", std::isfinite(c.val_macro_f1) ? nlohmann::json(c.val_macro_f1) : nlohmann::json()},
                     {"work_passes", c.work},
                     {"seconds", c.seconds},
                     {"config", c.config}});
  }
  const double featurize_seconds = best->featurize_seconds + (ensemble_setup ? second->featurize_seconds : 0.0);
  const double train_seconds = best->train_seconds + (ensemble_setup ? second->train_seconds : 0.0);
  if (ensemble_setup) {
    out.result = assemble(std::move(*ensemble_setup), std::move(*ensemble_encoded), std::move(best->result),
                          featurize_seconds, train_seconds, test, {});
    auto& training = out.result.artifact.manifest.training;
    nlohmann::json members = nlohmann::json::array();
    for (const Trained* t : {&*best, &*second}) {
      members.push_back({{"candidate", options.candidates[t->index].name},
                         {"config", train::to_json(t->setup.config)},
                         {"best_epoch", t->result.best_epoch},
                         {"epochs_run", t->result.history.size()}});
    }
    training["ensemble"] = {{"members", members}};
  } else {
    out.result = assemble(std::move(best->setup), std::move(best->encoded), std::move(best->result), featurize_seconds,
                          train_seconds, test, {});
  }
  out.result.artifact.manifest.training["selection"] = {
      {"metric", "validation macro-F1"},
      {"validation", out.validation},
      {"chosen", out.chosen},
      {"budget_passes", out.budget},
      {"work_passes", out.work},
      {"cut_by_time", out.cut_by_time},
      {"pruner", {{"kind", "successive_halving"}, {"min_resource_epochs", options.min_resource_epochs}, {"reduction_factor", options.reduction_factor}, {"keep_at_rungs", keep_top}}},
      {"candidates", table}};
  if (!ensemble_record.is_null()) out.result.artifact.manifest.training["selection"]["ensemble"] = ensemble_record;
  return out;
}

std::string format_selection_table(const SelectionResult& r) {
  std::string s;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-22s %6s %14s %8s %9s\n", "candidate", "status", "epochs", "val macro-F1",
                "work", "seconds");
  s += line;
  for (const auto& c : r.candidates) {
    const std::string f1 = std::isfinite(c.val_macro_f1) ? [&] {
      char b[32];
      std::snprintf(b, sizeof b, "%.4f", c.val_macro_f1);
      return std::string(b);
    }()
                                                          : std::string("-");
    std::string status = c.status;
    if (status.size() > 60) status = status.substr(0, 57) + "...";
    std::snprintf(line, sizeof line, "%-12s %-22s %6d %14s %8.1f %9.1f\n", c.name.c_str(), status.c_str(), c.epochs,
                  f1.c_str(), c.work, c.seconds);
    s += line;
  }
  std::snprintf(line, sizeof line, "work: %.1f of a budget of %.1f passes over the training set%s\n", r.work, r.budget,
                r.cut_by_time ? "; cut short by --max-time (the choice now depends on this machine's speed)" : "");
  s += line;
  return s;
}

}  // namespace kiln::pipeline
