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

#include <nlohmann/json.hpp>

#include "feedback_log.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/metrics.h"
#include "kiln/serve/server.h"

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
constexpr const char* kShape = R"(send {"items": [{"text": "...", "label": "...", "id": "..."}]} ("id" optional))";

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

struct FeedbackService::Impl {
  explicit Impl(FeedbackOptions o) : options(std::move(o)) {}

  FeedbackOptions options;
  serve::Server* server = nullptr;
  std::string model, state_dir;
  std::unique_ptr<FeedbackLog> log;

  // The Learner and what was fed to it: the background thread's, and rollback's under learner_mu.
  std::mutex learner_mu;
  std::unique_ptr<Learner> learner;
  int64_t fed_seq = 0;
  std::string served_version;  ///< the Learner's version the server serves ("" = the original)

  // Wakes the background thread: new items, stop.
  std::mutex wake_mu;
  std::condition_variable wake;
  std::condition_variable idle;
  int64_t logged_seq = 0;  ///< highest seq appended (under wake_mu)
  int64_t learnt_seq = 0;  ///< highest seq fed and processed (under wake_mu)
  bool stop = false;
  std::thread worker;

  // Labels a request may use, and the per-token minute windows (under req_mu).
  std::mutex req_mu;
  std::set<std::string> labels;
  std::vector<std::string> label_list;
  std::map<std::string, std::deque<std::pair<Clock::time_point, int64_t>>> windows;

  // Metrics: counters updated where things happen, gauges mirrored from `snap` at collect time.
  serve::Counter* items_total = nullptr;
  serve::Counter* updates_total = nullptr;
  serve::Counter* drifts_total = nullptr;
  serve::Gauge* buffer_items = nullptr;
  serve::Gauge* gate = nullptr;
  serve::Gauge* since_promotion = nullptr;
  serve::Gauge* accuracy = nullptr;
  serve::Gauge* adwin_error = nullptr;
  serve::Gauge* pending = nullptr;
  serve::Gauge* log_items = nullptr;
  struct Snapshot {
    LearnSummary summary;
    GateScores gate;
    std::size_t buffer = 0, pending = 0;
    double adwin = 0;
    int64_t log_items = 0, cursor = 0;
  };
  std::mutex snap_mu;
  Snapshot snap;
  std::atomic<double> last_promotion_unix{0};

  // --shadow: the held candidate answers copies of live requests (queued by on_predicted, predicted
  // on the background thread).
  std::atomic<bool> shadowing{false};
  std::unique_ptr<artifact::Predictor> shadow_predictor;  // the background thread's
  std::deque<std::pair<std::vector<std::string>, std::vector<std::string>>> shadow_queue;  // under wake_mu
  int64_t shadow_seen = 0, shadow_texts = 0, shadow_agree = 0;
  serve::Gauge* shadow_agreement = nullptr;
  void shadow_step();

  void open();
  void run();
  void learn_step(std::vector<FeedbackItem> items);
  void after_learning();  // under learner_mu
  ExtensionResponse post_feedback(const ExtensionRequest& r);
  ExtensionResponse status();
  ExtensionResponse rollback();
  [[nodiscard]] std::string unknown_label(const std::string& where, const std::string& label) const;
};

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
}

void FeedbackService::detach() {
  auto& m = *impl_;
  {
    std::lock_guard<std::mutex> lock(m.wake_mu);
    m.stop = true;
  }
  m.wake.notify_all();
  if (m.worker.joinable()) m.worker.join();
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

std::string FeedbackService::Impl::unknown_label(const std::string& where, const std::string& label) const {
  std::string list;
  for (const auto& l : label_list) list += (list.empty() ? "" : ", ") + l;
  return where + " '" + label + "' is not one of the model's " + std::to_string(label_list.size()) + " labels (" + list +
         "); fix the label, or restart the server with --allow-new-labels to learn it as a new class";
}

serve::ExtensionResponse FeedbackService::handle(const ExtensionRequest& r) {
  auto& m = *impl_;
  if (r.path == "/v1/admin/rollback") {
    if (r.method != "POST") {
      auto a = ExtensionResponse::error(405, "method_not_allowed", r.method + " " + r.path + " is not supported; use POST");
      a.headers.emplace_back("Allow", "POST");
      return a;
    }
    return m.rollback();
  }
  if (r.method != "POST" && r.method != "GET") {
    auto a = ExtensionResponse::error(405, "method_not_allowed",
                                      r.method + " " + r.path + " is not supported; use POST (send feedback) or GET (its state)");
    a.headers.emplace_back("Allow", "GET, POST");
    return a;
  }
  const std::string prefix = "Bearer ";
  if (r.authorization.empty() || r.authorization.rfind(prefix, 0) != 0 ||
      !serve::constant_time_equal(r.authorization.substr(prefix.size()), m.options.token)) {
    auto a = ExtensionResponse::error(
        401, "unauthorized",
        r.authorization.empty() ? "/v1/feedback needs the header `Authorization: Bearer <token>` (the server's --feedback-token-file)"
                                : "the bearer token does not match the server's --feedback-token-file");
    a.headers.emplace_back("WWW-Authenticate", "Bearer");
    return a;
  }
  return r.method == "GET" ? m.status() : m.post_feedback(r);
}

serve::ExtensionResponse FeedbackService::Impl::post_feedback(const ExtensionRequest& r) {
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::parse_error& e) {
    return ExtensionResponse::error(400, "invalid_json",
                                    "the request body is not valid JSON (at byte " + std::to_string(e.byte) + "); " + kShape);
  }
  if (!body.is_object() || !body.contains("items") || !body["items"].is_array()) {
    return ExtensionResponse::error(400, "invalid_request", std::string("the body needs an \"items\" array; ") + kShape);
  }
  const auto& arr = body["items"];
  const auto n = static_cast<int64_t>(arr.size());
  const auto refuse = [&](int status, const std::string& code, const std::string& message) {
    items_total->labels({model, "rejected"}).inc(static_cast<double>(n));
    return ExtensionResponse::error(status, code, message);
  };
  if (n == 0) return refuse(400, "invalid_request", std::string("\"items\" is empty; ") + kShape);
  if (n > options.max_items_per_request) {
    return refuse(429, "too_many_items",
                  "\"items\" holds " + std::to_string(n) + " items, more than the " +
                      std::to_string(options.max_items_per_request) +
                      " one request may carry (--feedback-max-items); split it into smaller requests");
  }
  std::vector<FeedbackItem> items;
  items.reserve(arr.size());
  {
    std::lock_guard<std::mutex> lock(req_mu);
    for (std::size_t i = 0; i < arr.size(); ++i) {
      const auto& it = arr[i];
      const std::string where = "items[" + std::to_string(i) + "]";
      if (!it.is_object()) return refuse(400, "invalid_request", where + " is not an object; " + kShape);
      if (it.contains("image")) {
        return refuse(400, "invalid_request", where + ".image: this server learns from text feedback only; send \"text\"");
      }
      if (!it.contains("text") || !it["text"].is_string()) {
        return refuse(400, "invalid_request", where + ".text is missing or not a string; " + kShape);
      }
      if (!it.contains("label") || !it["label"].is_string() || it["label"].get<std::string>().empty()) {
        return refuse(400, "invalid_request", where + ".label is missing, empty or not a string; " + kShape);
      }
      FeedbackItem item;
      if (it.contains("id")) {
        if (it["id"].is_string()) {
          item.id = it["id"].get<std::string>();
        } else if (it["id"].is_number_integer()) {
          item.id = std::to_string(it["id"].get<int64_t>());
        } else {
          return refuse(400, "invalid_request", where + ".id must be a string or an integer");
        }
      }
      item.example.text = it["text"].get<std::string>();
      item.example.label = it["label"].get<std::string>();
      if (!options.learn.update.allow_new_labels && !labels.count(item.example.label)) {
        return refuse(400, "unknown_label", unknown_label(where + ".label", item.example.label));
      }
      items.push_back(std::move(item));
    }
    // The token's last 60 seconds.
    auto& window = windows[options.token];
    const auto now = Clock::now();
    while (!window.empty() && now - window.front().first >= std::chrono::seconds(60)) window.pop_front();
    int64_t used = 0;
    for (const auto& [t, k] : window) used += k;
    if (used + n > options.max_items_per_minute) {
      // Retry when enough of the window has expired for this request to fit.
      int64_t freed = 0;
      double wait_s = 60;
      for (const auto& [t, k] : window) {
        freed += k;
        if (used - freed + n <= options.max_items_per_minute) {
          wait_s = 60 - std::chrono::duration<double>(now - t).count();
          break;
        }
      }
      auto a = refuse(429, "rate_limited",
                      "this token sent " + std::to_string(used) + " items in the last minute; " + std::to_string(n) +
                          " more would pass the " + std::to_string(options.max_items_per_minute) +
                          " a minute allowed (--feedback-max-items-per-minute); retry after the Retry-After seconds");
      a.headers.emplace_back("Retry-After", std::to_string(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_s)))));
      return a;
    }
    window.emplace_back(now, n);
  }
  const AppendResult a = log->append(items);  // durable when it returns
  items_total->labels({model, "accepted"}).inc(static_cast<double>(a.accepted));
  items_total->labels({model, "duplicate"}).inc(static_cast<double>(a.duplicates));
  if (a.accepted > 0) {
    {
      std::lock_guard<std::mutex> lock(wake_mu);
      logged_seq = std::max(logged_seq, log->last_seq());
    }
    wake.notify_all();
  }
  return ExtensionResponse::ok(nlohmann::json{{"accepted", a.accepted}, {"duplicates", a.duplicates}}.dump());
}

serve::ExtensionResponse FeedbackService::Impl::status() {
  Snapshot s;
  {
    std::lock_guard<std::mutex> lock(snap_mu);
    s = snap;
  }
  int64_t logged = 0;
  {
    std::lock_guard<std::mutex> lock(wake_mu);
    logged = logged_seq;
  }
  nlohmann::json j = s.summary.to_json();
  j["model"] = model;
  j["state_dir"] = state_dir;
  j["log_items"] = log->size();
  j["logged_seq"] = logged;
  j["saved_cursor"] = s.cursor;
  j["pending"] = s.pending;
  j["buffer_items"] = s.buffer;
  j["served_version"] = s.summary.version.empty() ? "original" : s.summary.version;
  if (options.shadow_requests > 0) {
    std::lock_guard<std::mutex> lock(wake_mu);
    j["shadow"] = {{"active", shadowing.load()}, {"requests", shadow_seen}, {"of", options.shadow_requests}};
  }
  return ExtensionResponse::ok(j.dump());
}

serve::ExtensionResponse FeedbackService::Impl::rollback() {
  std::lock_guard<std::mutex> lock(learner_mu);
  const std::string from = learner->summary().version;
  std::string dir;
  try {
    dir = learner->rollback();
  } catch (const ConfigError& e) {
    return ExtensionResponse::error(409, "nothing_to_roll_back", e.what());
  }
  const std::string model_version = server->load_model(model, dir);
  served_version = learner->summary().version;
  after_learning();
  const std::string to = served_version.empty() ? "original" : served_version;
  core::info("feedback (model " + model + "): rolled back from " + from + " to " + to + " (POST /v1/admin/rollback)");
  return ExtensionResponse::ok(
      nlohmann::json{{"model", model}, {"from", from}, {"to", to}, {"model_version", model_version}}.dump());
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
