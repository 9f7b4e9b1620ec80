// Dynamic batching: each predict request is encoded on its own (HTTP) thread, then concurrent
// requests are joined into one forward pass of up to `max_batch` texts, run by an inference thread,
// and answered individually. LibTorch-free: the model behind it is any `BatchModel` (the server's
// encodes into nn::Batch and joins requests with Batch::concat).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kiln::serve {

/// What the batcher runs. Implementations must be safe to call from many threads at once.
class BatchModel {
 public:
  /// One request's inputs as the model encoded them; opaque to the batcher.
  struct Input {
    virtual ~Input() = default;
  };
  virtual ~BatchModel() = default;
  [[nodiscard]] virtual std::size_t num_classes() const = 0;
  /// Encodes one request's texts; called by submit(), on the request's thread.
  [[nodiscard]] virtual std::shared_ptr<const Input> encode(const std::vector<std::string>& texts) const = 0;
  /// Class probabilities of the inputs joined in order, row-major [their texts, num_classes()].
  [[nodiscard]] virtual std::vector<float> predict_proba(const std::vector<const Input*>& inputs) const = 0;
};

struct BatcherOptions {
  /// Most texts in one forward pass (>= 1). A single request with more texts runs alone. Default 64.
  std::size_t max_batch = 64;
  /// Longest wait, in milliseconds, for more texts once a batch has started, and only while other
  /// requests are still being read (`arriving()`); an idle server answers at once. >= 0. Default 2.
  double max_delay_ms = 2.0;
  /// Most texts waiting for an inference thread (>= 1); submit() refuses beyond it (the server
  /// answers 503 with Retry-After). Default 4096.
  std::size_t max_queue = 4096;
  /// Inference threads (>= 1). Default 1 (LibTorch parallelizes inside each forward pass).
  int workers = 1;
  /// Microseconds under which this model's forward passes (their moving average) count as cheap
  /// enough to run on the thread that queued them (defer_here() / run_here(): in the server, the
  /// worker that runs one event-loop round's requests as one batch) instead of being handed to an
  /// inference thread: for a small model the hand-offs cost more than the pass. 0 = always hand
  /// off. In [0, 100000]. Default 300.
  double inline_max_us = 300;

  /// Throws ConfigError naming the field and the value.
  void validate() const;
};

struct BatchResult {
  /// Row-major [texts, classes] probabilities of this request's texts.
  std::vector<float> probabilities;
  std::size_t classes = 0;
  /// Texts in the forward pass this request rode in (itself included).
  std::size_t batch_texts = 0;
  /// Set when the model threw; probabilities are then empty.
  std::exception_ptr error;
};

/// Thread-safe. Requests for different models (across a hot reload) never share a batch: each
/// runs on the model it was submitted with.
class Batcher {
 public:
  /// `on_batch(texts)`: called by an inference thread after each forward pass (metrics).
  explicit Batcher(BatcherOptions options, std::function<void(std::size_t)> on_batch = {});
  /// Stops after finishing every queued request.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Encodes `texts` (non-empty) with `model` on the calling thread and queues them. Returns nothing
  /// when the queue is full or the batcher is stopping; the caller then refuses the request. When
  /// encoding throws, the future holds the error (BatchResult::error). `was_arriving`: this request was announced
  /// with arriving(); it stops counting as arriving in the same step (either way), so no batch
  /// waits for it once it is queued.
  [[nodiscard]] std::optional<std::future<BatchResult>> submit(std::shared_ptr<const BatchModel> model,
                                                               std::vector<std::string> texts,
                                                               bool was_arriving = false);
  /// As submit(), without blocking anyone: `done` runs once with the result, on an inference thread
  /// (or on the calling thread when encoding throws). Returns false, without calling `done`, when
  /// the queue is full or the batcher is stopping.
  [[nodiscard]] bool submit_async(std::shared_ptr<const BatchModel> model, std::vector<std::string> texts,
                                  bool was_arriving, std::function<void(BatchResult)> done);
  /// As submit_async() for `texts` texts that the caller already encoded with `model` (so that it
  /// can reuse the encoding, e.g. for drift). Never calls `done` on the calling thread.
  [[nodiscard]] bool submit_encoded(std::shared_ptr<const BatchModel> model,
                                    std::shared_ptr<const BatchModel::Input> input, std::size_t texts,
                                    bool was_arriving, std::function<void(BatchResult)> done);

  /// Whether defer_here() is worth it: inline_max_us > 0 and the recent forward passes averaged
  /// under it (false until one pass has been measured, so a model starts on the inference threads).
  [[nodiscard]] bool runs_inline() const noexcept;
  /// As submit_encoded(), but the batch runs on the next run_here() caller's thread, joined with
  /// the other requests deferred until then; `done` runs there. False, without calling `done`, as submit_encoded().
  [[nodiscard]] bool defer_here(std::shared_ptr<const BatchModel> model, std::shared_ptr<const BatchModel::Input> input,
                                std::size_t texts, std::function<void(BatchResult)> done);
  /// Runs every request defer_here() queued, on this thread, in batches of up to max_batch texts
  /// (one model per batch). Returns the number of requests answered.
  std::size_t run_here();

  /// A request has arrived and is being read: batches may wait (up to max_delay_ms) for it.
  /// Pair each with one `arrived()` when it is submitted or refused.
  void arriving() noexcept;
  void arrived() noexcept;

  /// Texts waiting now.
  [[nodiscard]] std::size_t queue_depth() const;
  /// Finishes every queued request (deferred ones included), then joins the inference threads. Idempotent.
  void stop();

  [[nodiscard]] const BatcherOptions& options() const { return options_; }

 private:
  struct Job {
    std::shared_ptr<const BatchModel> model;
    std::shared_ptr<const BatchModel::Input> input;
    std::size_t texts = 0;
    std::function<void(BatchResult)> done;
  };
  void run_worker();
  void run_batch(std::vector<Job>& jobs);

  BatcherOptions options_;
  std::function<void(std::size_t)> on_batch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  std::vector<Job> here_;  // defer_here()'d, for run_here()
  std::size_t queued_texts_ = 0;
  /// Moving average of a forward pass, nanoseconds; < 0 before the first.
  std::atomic<int64_t> pass_ns_{-1};
  int arriving_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::serve
