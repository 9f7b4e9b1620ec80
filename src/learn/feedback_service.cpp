#include "kiln/learn/feedback_service.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include "feedback_service_impl.h"
#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/metrics.h"
#include "kiln/serve/server.h"

// LibTorch's OpenMP runtime (libgomp): the team size of this thread's parallel regions only. Declared
// here rather than through <omp.h> so the module builds without -fopenmp (and keeps the shared
// precompiled header valid).

namespace kiln::learn {
namespace fs = std::filesystem;
using serve::ExtensionRequest;
using serve::ExtensionResponse;

namespace {

using Clock = std::chrono::steady_clock;
/// Nice value of the background learner thread (0 = the server's, 19 = lowest).
constexpr int kLearnerNice = 10;
/// Items read from the log per Learner::observe call.
constexpr int64_t kChunk = 256;

fs::path absolute_normal(const std::string& p) {
  fs::path path(p);
  if (path.is_relative()) path = fs::current_path() / path;
  return path.lexically_normal();
}

bool is_under(const fs::path& path, const fs::path& root) {
  const auto rel = path.lexically_relative(root);
  return !rel.empty() && rel.is_relative() && *rel.begin() != "..";
}

std::string strip_slash(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

void FeedbackOptions::validate() const {
  if (token.size() < serve::kMinAuthTokenChars) {
    throw ConfigError("--feedback-token-file must hold a token of at least " + std::to_string(serve::kMinAuthTokenChars) +
                      " characters, got " + std::to_string(token.size()));
  }
  if (max_items_per_request < 1) {
    throw ConfigError("--feedback-max-items must be >= 1, got " + std::to_string(max_items_per_request));
  }
  if (max_items_per_minute < 1) {
    throw ConfigError("--feedback-max-items-per-minute must be >= 1, got " + std::to_string(max_items_per_minute));
  }
  if (shadow_requests < 0) throw ConfigError("--shadow must be >= 0 requests (0 = off), got " + std::to_string(shadow_requests));
  if (!std::isfinite(update_interval_s) || update_interval_s < 0) {
    throw ConfigError("--update-interval must be >= 0 seconds (0 = off), got " + std::to_string(update_interval_s));
  }
  learn::validate(learn);
}

std::string default_state_dir(const std::string& artifact_dir, const std::string& repository, const std::string& model) {
  if (!repository.empty()) {
    const fs::path repo = absolute_normal(strip_slash(repository));
    return (repo.parent_path() / (repo.filename().string() + ".learn") / model).string();
  }
  const fs::path a = absolute_normal(strip_slash(artifact_dir));
  return (a.parent_path() / (a.filename().string() + ".learn")).string();
}


FeedbackService::FeedbackService(FeedbackOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->options.validate();
}

FeedbackService::~FeedbackService() { detach(); }

std::vector<std::string> FeedbackService::routes() const { return {"/v1/feedback", "/v1/admin/rollback"}; }

std::string FeedbackService::state_dir() const { return impl_->state_dir; }

void FeedbackService::Impl::open() {
  model = options.model.empty() ? server->default_model() : options.model;
  const std::string artifact = server->artifact_of(model);
  if (artifact.empty()) throw ConfigError("--feedback-model '" + model + "' is not a served model");
  state_dir = options.state_dir.empty() ? default_state_dir(artifact, options.repository, model)
                                        : absolute_normal(options.state_dir).string();
  if (!options.repository.empty() && is_under(absolute_normal(state_dir), absolute_normal(strip_slash(options.repository)))) {
    throw ConfigError("--state-dir " + state_dir + " lies inside the model repository " + options.repository +
                      ", whose every subdirectory is served as a model; put it outside (the default is " +
                      default_state_dir(artifact, options.repository, model) + ")");
  }
  if (is_under(absolute_normal(state_dir), absolute_normal(artifact)) || absolute_normal(state_dir) == absolute_normal(artifact)) {
    throw ConfigError("--state-dir " + state_dir + " lies inside the served artifact " + artifact +
                      "; put it beside it (the default is " + default_state_dir(artifact, options.repository, model) + ")");
  }
  LearnOptions lo = options.learn;
  lo.state_flag = "--state-dir";
  lo.hold_promotions = options.shadow_requests > 0;
  // The learner gives up the CPU between training steps and pieces of predictions while requests
  // are arriving (a server busy with other work, or idle, lets it run its share).
  lo.update.yield_if = [srv = server, last = std::make_shared<std::atomic<uint64_t>>(0)] {
    const uint64_t now = srv->requests_seen();
    return last->exchange(now, std::memory_order_relaxed) != now;
  };
  learner = std::make_unique<Learner>(artifact, state_dir, lo);  // creates the directory
  log = std::make_unique<FeedbackLog>((fs::path(state_dir) / "feedback.sqlite").string());
  learner->on_message = [m = model](const std::string& s) { core::info("feedback (model " + m + "): " + s); };
  served_version = "";
  if (learner->served_dir() != absolute_normal(artifact).string()) {
    // A restart after promotions: the last promoted version serves again.
    server->load_model(model, learner->served_dir());
  }
  served_version = learner->summary().version;
  fed_seq = learner->cursor();
  logged_seq = log->last_seq();
  learnt_seq = fed_seq;
  for (const auto& l : learner->served().manifest.labels) {
    if (labels.insert(l).second) label_list.push_back(l);
  }
  reads_text = reads_images = false;
  for (const auto& pre : learner->served().preprocessors) (pre->type() == "image" ? reads_images : reads_text) = true;
  if (fed_seq < logged_seq) {
    core::info("feedback (model " + model + "): learning the " + std::to_string(logged_seq - fed_seq) +
               " logged items after the saved state again");
  }
}

void FeedbackService::attach(serve::Server& server, serve::MetricsRegistry& metrics) {
  auto& m = *impl_;
  m.server = &server;
  m.open();
  m.items_total = &metrics.counter("kiln_feedback_items_total",
                                   "Feedback items by result: accepted (logged), duplicate (id seen before), rejected "
                                   "(in a refused request).",
                                   {"model", "result"});
  for (const char* r : {"accepted", "duplicate", "rejected"}) m.items_total->labels({m.model, r});
  m.updates_total = &metrics.counter("kiln_model_updates_total",
                                     "Gated updates of the served model by result: promoted, rejected (by the gate), "
                                     "failed.",
                                     {"model", "result"});
  m.drifts_total = &metrics.counter("kiln_feedback_drifts_total",
                                    "Drifts the detectors found in the error rate of the feedback, by detector.",
                                    {"model", "detector"});
  m.buffer_items = &metrics.gauge("kiln_replay_buffer_items", "Items in the replay buffer.", {"model"});
  m.gate = &metrics.gauge("kiln_model_gate_macro_f1",
                          "Macro-F1 on the gate set at the last update, of the served (role=\"served\") and of the candidate "
                          "(role=\"candidate\") model.",
                          {"model", "role"});
  m.since_promotion = &metrics.gauge("kiln_model_seconds_since_promotion",
                                     "Seconds since the last promoted version was swapped in (or since the server "
                                     "started, before any).",
                                     {"model"});
  m.accuracy = &metrics.gauge("kiln_feedback_online_accuracy",
                              "Share of feedback items the served model predicted right before learning from them.", {"model"});
  m.adwin_error = &metrics.gauge("kiln_feedback_error_rate_adwin", "ADWIN's estimate of the feedback error rate.", {"model"});
  m.pending = &metrics.gauge("kiln_feedback_pending_items", "Feedback items learnt from, waiting for the next update.",
                              {"model"});
  m.log_items = &metrics.gauge("kiln_feedback_log_items", "Items in the feedback log.", {"model"});
  if (m.options.shadow_requests > 0) {
    m.shadow_agreement = &metrics.gauge("kiln_model_shadow_agreement",
                                        "Share of shadowed texts on which the last shadowed candidate's top-1 label "
                                        "agreed with the served model's (--shadow).",
                                        {"model"});
  }
  m.last_promotion_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  {
    std::lock_guard<std::mutex> lock(m.learner_mu);
    m.after_learning();
  }
  Impl* p = impl_.get();
  metrics.on_collect([p] {
    Impl::Snapshot s;
    {
      std::lock_guard<std::mutex> lock(p->snap_mu);
      s = p->snap;
    }
    int64_t rejected = 0;
    for (const auto& [code, n] : s.summary.rejected) rejected += n;
    const std::string& name = p->model;
    p->updates_total->labels({name, "promoted"}).mirror(static_cast<double>(s.summary.promoted));
    p->updates_total->labels({name, "rejected"}).mirror(static_cast<double>(rejected));
    p->updates_total->labels({name, "failed"}).mirror(static_cast<double>(s.summary.failed));
    for (const char* d : {"adwin", "page_hinkley"}) {
      const auto it = s.summary.drifts.find(d);
      p->drifts_total->labels({name, d}).mirror(it == s.summary.drifts.end() ? 0.0 : static_cast<double>(it->second));
    }
    p->buffer_items->labels({name}).set(static_cast<double>(s.buffer));
    p->gate->labels({name, "served"}).set(s.gate.served_gate);
    p->gate->labels({name, "candidate"}).set(s.gate.candidate_gate);
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    p->since_promotion->labels({name}).set(now - p->last_promotion_unix.load());
    p->accuracy->labels({name}).set(s.summary.online_accuracy());
    p->adwin_error->labels({name}).set(s.adwin);
    p->pending->labels({name}).set(static_cast<double>(s.pending));
    p->log_items->labels({name}).set(static_cast<double>(s.log_items));
  });
  m.worker = std::thread([p] { p->run(); });
  m.intake = std::thread([p] { p->run_intake(); });
}

void FeedbackService::detach() {
  auto& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.wake_mu);
    m.stop = true;
  }
  m.wake.notify_all();
  if (m.worker.joinable()) m.worker.join();
  {
    std::lock_guard<std::mutex> lock(m.intake_mu);
    m.intake_stop = true;
  }
  m.intake_wake.notify_all();
  if (m.intake.joinable()) m.intake.join();  // after answering what it had queued
}

void FeedbackService::Impl::run_intake() {
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kLearnerNice) != 0) {
    core::warn("feedback (model " + model + "): could not lower the feedback intake thread's priority; feedback "
               "requests compete with predictions for the CPU");
  }
  for (;;) {
    std::packaged_task<ExtensionResponse()> task;
    {
      std::unique_lock<std::mutex> lock(intake_mu);
      intake_wake.wait(lock, [&] { return intake_stop || !intake_queue.empty(); });
      if (intake_queue.empty()) return;
      task = std::move(intake_queue.front());
      intake_queue.pop_front();
    }
    task();  // an exception reaches the waiting request through its future
  }
}

ExtensionResponse FeedbackService::Impl::on_intake(std::function<ExtensionResponse()> fn) {
  std::future<ExtensionResponse> answer;
  {
    std::lock_guard<std::mutex> lock(intake_mu);
    if (intake_stop || !intake.joinable()) return fn();
    std::packaged_task<ExtensionResponse()> task(std::move(fn));
    answer = task.get_future();
    intake_queue.push_back(std::move(task));
  }
  intake_wake.notify_one();
  return answer.get();
}

bool FeedbackService::wait_idle(double timeout_s) {
  auto& m = *impl_;
  std::unique_lock<std::mutex> lock(m.wake_mu);
  return m.idle.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return m.learnt_seq >= m.logged_seq; });
}

// Under learner_mu: swaps a newly promoted version in, refreshes labels and the metrics snapshot.
void FeedbackService::Impl::after_learning() {
  const std::string version = learner->summary().version;
  if (version != served_version) {
    try {
      server->load_model(model, learner->served_dir());
      served_version = version;
      last_promotion_unix = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    } catch (const std::exception& e) {
      core::warn("feedback (model " + model + "): swapping in " + learner->served_dir() +
                 " failed, the previous version keeps serving: " + e.what());
    }
  }
  if (learner->held() && !shadowing) {
    shadow_predictor = std::make_unique<artifact::Predictor>(*learner->held());
    shadow_seen = shadow_texts = shadow_agree = 0;
    shadowing = true;
    core::info("feedback (model " + model + "): the candidate shadows the next " + std::to_string(options.shadow_requests) +
               " predict requests before its promotion");
  }
  {
    std::lock_guard<std::mutex> lock(req_mu);
    for (const auto& l : learner->served().manifest.labels) {
      if (labels.insert(l).second) label_list.push_back(l);
    }
  }
  Snapshot s;
  s.summary = learner->summary();
  s.gate = learner->last_gate();
  s.buffer = learner->buffer().size();
  s.pending = learner->pending();
  s.adwin = learner->adwin_error_rate();
  s.cursor = learner->cursor();
  s.log_items = log->size();
  std::lock_guard<std::mutex> lock(snap_mu);
  snap = std::move(s);
}

void FeedbackService::Impl::learn_step(std::vector<FeedbackItem> items) {
  std::lock_guard<std::mutex> lock(learner_mu);
  try {
    learner->observe(items);
  } catch (const std::exception& e) {
    // Never loops on a bad item: the chunk is skipped (it stays in the log).
    core::warn("feedback (model " + model + "): learning from log items " + std::to_string(items.front().seq) + ".." +
               std::to_string(items.back().seq) + " failed, skipped: " + e.what());
  }
  fed_seq = items.back().seq;
  after_learning();
}

void FeedbackService::Impl::run() {
  // Learning yields to serving: this thread (and the training it runs inline) at nice 10. Not
  // SCHED_IDLE: a starved thread holding a lock the serving threads share (the allocator's, the
  // shared_ptr swap's) would stall them; one run of bench/serve_feedback_load.sh with it, on a loaded
  // 2-core machine, had P99 20x the run without feedback. Linux nices threads one by one.
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), kLearnerNice) != 0) {
    core::warn("feedback (model " + model + "): could not lower the learner thread's priority; updates compete with "
               "predictions for the CPU");
  }
  // Its training runs on this thread alone: LibTorch's parallel regions would hand it to OpenMP
  // workers, which run at the serving threads' priority. core::set_openmp_threads sets this thread's
  // team size only (at::set_num_threads would also change the process-wide default that threads
  // started later, such as a new model's batcher, take).
  at::parallel_for(0, 1, 1, [](int64_t, int64_t) {});  // LibTorch's lazy per-thread set-up first
  core::set_openmp_threads(1);
  auto last_update = Clock::now();
  int64_t updates_seen = -1;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(wake_mu);
      const auto pred = [&] { return stop || logged_seq > learnt_seq || !shadow_queue.empty(); };
      if (options.update_interval_s > 0) {
        wake.wait_until(lock, last_update + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(options.update_interval_s)),
                        pred);
      } else {
        wake.wait(lock, pred);
      }
      if (stop) return;
    }
    try {
      shadow_step();
      std::vector<FeedbackItem> items = log->read_after(fed_seq, kChunk);
      if (!items.empty()) {
        const int64_t last = items.back().seq;
        learn_step(std::move(items));
        std::lock_guard<std::mutex> lock(wake_mu);
        learnt_seq = std::max(learnt_seq, last);
      } else {
        std::lock_guard<std::mutex> lock(wake_mu);
        learnt_seq = logged_seq;
      }
      {
        std::lock_guard<std::mutex> lock(learner_mu);
        if (learner->summary().updates != updates_seen) {
          updates_seen = learner->summary().updates;
          last_update = Clock::now();
        }
        if (options.update_interval_s > 0 && Clock::now() - last_update >=
                                                 std::chrono::duration<double>(options.update_interval_s)) {
          if (learner->update_now("interval")) after_learning();
          last_update = Clock::now();
          updates_seen = learner->summary().updates;
        }
      }
    } catch (const std::exception& e) {
      core::warn("feedback (model " + model + "): the background learner failed, retrying in 1 s: " + e.what());
      std::unique_lock<std::mutex> lock(wake_mu);
      wake.wait_for(lock, std::chrono::seconds(1), [&] { return stop; });
    }
    idle.notify_all();
  }
}

bool FeedbackService::wants_predictions() const { return impl_->shadowing.load(std::memory_order_relaxed); }

void FeedbackService::on_predicted(const std::string& model, const std::vector<std::string>& texts,
                                   const std::vector<std::string>& labels) {
  auto& m = *impl_;
  if (model != m.model || !m.shadowing) return;
  {
    std::lock_guard<std::mutex> lock(m.wake_mu);
    // Never more queued than the shadow run still needs.
    if (static_cast<int64_t>(m.shadow_queue.size()) + m.shadow_seen >= m.options.shadow_requests) return;
    m.shadow_queue.emplace_back(texts, labels);
  }
  m.wake.notify_all();
}

// On the background thread: the held candidate answers the queued requests; after N, promotion.
void FeedbackService::Impl::shadow_step() {
  if (!shadowing) return;
  std::deque<std::pair<std::vector<std::string>, std::vector<std::string>>> batch;
  {
    std::lock_guard<std::mutex> lock(wake_mu);
    batch.swap(shadow_queue);
  }
  for (const auto& [texts, served] : batch) {
    const auto predictions = shadow_predictor->predict(texts);
    for (std::size_t i = 0; i < predictions.size(); ++i) shadow_agree += predictions[i].label == served[i];
    shadow_texts += static_cast<int64_t>(texts.size());
    std::lock_guard<std::mutex> lock(wake_mu);
    ++shadow_seen;
  }
  if (shadow_seen < options.shadow_requests) return;
  const double agreement = shadow_texts ? static_cast<double>(shadow_agree) / static_cast<double>(shadow_texts) : 0.0;
  if (shadow_agreement) shadow_agreement->labels({model}).set(agreement);
  std::lock_guard<std::mutex> lock(learner_mu);
  learner->promote_held({{"requests", shadow_seen}, {"texts", shadow_texts}, {"agreement", agreement}});
  shadowing = false;
  shadow_predictor.reset();
  after_learning();
  // The items that waited during the shadow run.
  if (static_cast<int64_t>(learner->pending()) >= options.learn.update_every && learner->update_now("every")) {
    after_learning();
  }
}

}  // namespace kiln::learn
