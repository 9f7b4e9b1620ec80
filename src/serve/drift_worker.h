// Drift measurement off the request path: requests offer their texts, one thread feeds them to
// their model's drift window. The queue is bounded, so under saturation drift samples the traffic
// instead of slowing requests down.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace kiln::serve {

class ServedModel;

/// Thread-safe.
class DriftWorker {
 public:
  /// `max_queued_texts`: texts waiting at most; offers beyond it are dropped (sampled).
  explicit DriftWorker(std::size_t max_queued_texts = 256);
  /// Finishes what is queued, then joins.
  ~DriftWorker();
  DriftWorker(const DriftWorker&) = delete;
  DriftWorker& operator=(const DriftWorker&) = delete;

  /// Queues `texts` for `model`'s drift window (nothing when the model has no drift profile or the
  /// queue is full).
  void offer(const std::shared_ptr<const ServedModel>& model, const std::vector<std::string>& texts);

 private:
  void run();
  const std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<const ServedModel>, std::vector<std::string>>> queue_;
  std::size_t queued_texts_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace kiln::serve
