#include "kiln/serve/batcher.h"

#include <sstream>

#include "kiln/core/error.h"

namespace kiln::serve {

void BatcherOptions::validate() const {
  if (max_batch < 1) throw ConfigError("serve.max_batch must be >= 1, got " + std::to_string(max_batch));
  if (!(max_delay_ms >= 0) || max_delay_ms > 10000) {
    std::ostringstream o;
    o << "serve.max_delay_ms must be in [0, 10000], got " << max_delay_ms;
    throw ConfigError(o.str());
  }
  if (max_queue < 1) throw ConfigError("serve.max_queue must be >= 1, got " + std::to_string(max_queue));
  if (workers < 1 || workers > 256) {
    throw ConfigError("serve.workers must be in [1, 256], got " + std::to_string(workers));
  }
  if (!(inline_max_us >= 0) || inline_max_us > 100000) {
    std::ostringstream o;
    o << "serve.inline_max_us must be in [0, 100000], got " << inline_max_us;
    throw ConfigError(o.str());
  }
}

Batcher::Batcher(BatcherOptions options, std::function<void(std::size_t)> on_batch)
    : options_(options), on_batch_(std::move(on_batch)) {
  options_.validate();
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { run_worker(); });
}

Batcher::~Batcher() { stop(); }

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  run_here();  // deferred requests were accepted: answer them too
}

std::optional<std::future<BatchResult>> Batcher::submit(std::shared_ptr<const BatchModel> model,
                                                        std::vector<std::string> texts, bool was_arriving) {
  auto promise = std::make_shared<std::promise<BatchResult>>();
  auto future = promise->get_future();
  if (!submit_async(std::move(model), std::move(texts), was_arriving,
                    [promise](BatchResult r) { promise->set_value(std::move(r)); })) {
    return std::nullopt;
  }
  return future;
}

bool Batcher::submit_async(std::shared_ptr<const BatchModel> model, std::vector<std::string> texts, bool was_arriving,
                           std::function<void(BatchResult)> done) {
  if (!model) throw Error("Batcher::submit: no model");
  if (texts.empty()) throw Error("Batcher::submit: no texts");
  std::shared_ptr<const BatchModel::Input> input;
  try {
    input = model->encode(texts);
  } catch (...) {
    BatchResult r;
    r.classes = model->num_classes();
    r.error = std::current_exception();
    if (was_arriving) arrived();
    done(std::move(r));
    return true;
  }
  return submit_encoded(std::move(model), std::move(input), texts.size(), was_arriving, std::move(done));
}

bool Batcher::submit_encoded(std::shared_ptr<const BatchModel> model, std::shared_ptr<const BatchModel::Input> input,
                             std::size_t texts, bool was_arriving, std::function<void(BatchResult)> done) {
  if (!model) throw Error("Batcher::submit: no model");
  if (texts == 0 || !input) throw Error("Batcher::submit: no texts");
  Job job{std::move(model), std::move(input), texts, std::move(done)};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (was_arriving) --arriving_;
    // One oversized request may still enter an empty queue, so no request is unservable.
    if (stopping_ || (queued_texts_ > 0 && queued_texts_ + job.texts > options_.max_queue)) {
      return false;
    }
    queued_texts_ += job.texts;
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return true;
}

bool Batcher::runs_inline() const noexcept {
  const int64_t ns = pass_ns_.load(std::memory_order_relaxed);
  return options_.inline_max_us > 0 && ns >= 0 && static_cast<double>(ns) < options_.inline_max_us * 1000.0;
}

bool Batcher::defer_here(std::shared_ptr<const BatchModel> model, std::shared_ptr<const BatchModel::Input> input,
                         std::size_t texts, std::function<void(BatchResult)> done) {
  if (!model) throw Error("Batcher::defer_here: no model");
  if (texts == 0 || !input) throw Error("Batcher::defer_here: no texts");
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || (queued_texts_ > 0 && queued_texts_ + texts > options_.max_queue)) return false;
  queued_texts_ += texts;
  here_.push_back(Job{std::move(model), std::move(input), texts, std::move(done)});
  return true;
}

std::size_t Batcher::run_here() {
  std::vector<Job> deferred;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (here_.empty()) return 0;
    deferred.swap(here_);
    for (const auto& j : deferred) queued_texts_ -= j.texts;
  }
  std::vector<Job> jobs;
  std::size_t texts = 0;
  for (auto& j : deferred) {
    const bool fits = texts == 0 || texts + j.texts <= options_.max_batch;
    if (!jobs.empty() && (!fits || j.model != jobs.front().model)) {
      run_batch(jobs);
      jobs.clear();
      texts = 0;
    }
    texts += j.texts;
    jobs.push_back(std::move(j));
  }
  if (!jobs.empty()) run_batch(jobs);
  return deferred.size();
}

void Batcher::arriving() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  ++arriving_;
}

void Batcher::arrived() noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --arriving_;
  }
  cv_.notify_all();
}

std::size_t Batcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_texts_;
}

void Batcher::run_worker() {
  std::vector<Job> jobs;
  for (;;) {
    jobs.clear();
    bool leftover = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double, std::milli>(options_.max_delay_ms));
      std::size_t texts = 0;
      for (;;) {
        while (!queue_.empty()) {
          Job& next = queue_.front();
          const bool fits = texts == 0 || texts + next.texts <= options_.max_batch;
          if (!fits || (!jobs.empty() && next.model != jobs.front().model)) break;
          texts += next.texts;
          queued_texts_ -= next.texts;
          jobs.push_back(std::move(next));
          queue_.pop_front();
        }
        if (texts >= options_.max_batch || !queue_.empty() || arriving_ == 0 || stopping_) break;
        // Others are mid-request: give them until the deadline to join this batch.
        if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
          if (queue_.empty()) break;
        }
        if (std::chrono::steady_clock::now() >= deadline && queue_.empty()) break;
      }
      leftover = !queue_.empty();
    }
    if (leftover) cv_.notify_one();  // work for another worker
    run_batch(jobs);
  }
}

void Batcher::run_batch(std::vector<Job>& jobs) {
  std::size_t total = 0;
  for (const auto& j : jobs) total += j.texts;
  const auto& model = *jobs.front().model;
  const std::size_t classes = model.num_classes();
  std::vector<float> probs;
  std::exception_ptr error;
  try {
    std::vector<const BatchModel::Input*> inputs;
    inputs.reserve(jobs.size());
    for (const auto& j : jobs) inputs.push_back(j.input.get());
    const auto started = std::chrono::steady_clock::now();
    probs = model.predict_proba(inputs);
    // A moving average over about the last 8 passes (races between workers lose an update at worst).
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count();
    const int64_t avg = pass_ns_.load(std::memory_order_relaxed);
    pass_ns_.store(avg < 0 ? ns : avg + (ns - avg) / 8, std::memory_order_relaxed);
    if (probs.size() != total * classes) {
      throw Error("model returned " + std::to_string(probs.size()) + " probabilities for " + std::to_string(total) +
                  " texts x " + std::to_string(classes) + " classes");
    }
  } catch (...) {
    error = std::current_exception();
  }
  // Counted before any request is answered, so a client that reads /metrics after its answer sees
  // its own batch.
  if (on_batch_) on_batch_(total);
  std::size_t row = 0;
  for (auto& j : jobs) {
    BatchResult r;
    r.classes = classes;
    r.batch_texts = total;
    const std::size_t n = j.texts;
    if (error) {
      r.error = error;
    } else {
      r.probabilities.assign(probs.begin() + static_cast<std::ptrdiff_t>(row * classes),
                             probs.begin() + static_cast<std::ptrdiff_t>((row + n) * classes));
    }
    row += n;
    try {
      j.done(std::move(r));
    } catch (...) {
      // The callback's own failure is its caller's to report; the other requests still get answers.
    }
  }
}

}  // namespace kiln::serve
