// Private: the feedback service's state, shared by feedback_service.cpp (lifecycle, the background
// learner, metrics, --shadow) and feedback_routes.cpp (POST/GET /v1/feedback, the rollback route).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "feedback_log.h"
#include "kiln/artifact/predictor.h"
#include "kiln/learn/feedback_service.h"
#include "kiln/serve/metrics.h"

namespace kiln::learn {

struct FeedbackService::Impl {
  using Clock = std::chrono::steady_clock;

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

  // POST /v1/feedback's work (parsing, checks, the durable append) runs on this thread at the
  // learner's nice value, not at the server's on a request worker, which only waits for the answer;
  // it gives up the CPU every 16 items, as the learner does between training steps and pieces of
  // predictions while requests are arriving (UpdateOptions::yield_if). Measured with
  // bench/serve_feedback_load.sh's timeline on a 2-core machine (Linux 6.18, EEVDF, where a lower
  // nice value alone does not make a running thread give way to a waking one): predictions due in
  // the 5 ms after a 100-item feedback request began averaged 0.27-0.49 ms more than the others
  // with the work on this thread without yields, 0.08-0.14 ms more with them. SCHED_IDLE was not
  // used: a thread that may wait as long as the CPUs stay busy must not hold what serving threads
  // take (malloc arenas, the model registry).
  std::mutex intake_mu;
  std::condition_variable intake_wake;
  std::deque<std::packaged_task<serve::ExtensionResponse()>> intake_queue;
  bool intake_stop = false;
  std::thread intake;
  void run_intake();
  /// Runs `fn` on the intake thread and returns its answer (inline when the thread is not running).
  serve::ExtensionResponse on_intake(std::function<serve::ExtensionResponse()> fn);

  // Labels a request may use, and the per-token minute windows (under req_mu).
  std::mutex req_mu;
  std::set<std::string> labels;
  std::vector<std::string> label_list;
  bool reads_text = true, reads_images = false;  ///< the learning model's inputs (its preprocessors)
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
  // The routes (feedback_routes.cpp).
  serve::ExtensionResponse post_feedback(const serve::ExtensionRequest& r);
  serve::ExtensionResponse status();
  serve::ExtensionResponse rollback();
  [[nodiscard]] std::string unknown_label(const std::string& where, const std::string& label) const;
};

}  // namespace kiln::learn
