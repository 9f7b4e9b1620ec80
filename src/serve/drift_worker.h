// Drift measurement off the request path: requests offer their texts, one thread feeds them to
// their model's drift window. The queue is bounded, so under saturation drift samples the traffic
// instead of slowing requests down. Under load the thread wakes once per kDriftBatchWindow for
// everything offered meanwhile, not once per request (a wake-up costs more than measuring a text).
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

#include "kiln/serve/batcher.h"

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

  /// Queues `texts` (and `images`) for `model`'s drift window, with `encoded`, what the model's encode() made of
  /// them for the prediction (kept alive until measured; nothing is featurized again). Nothing
  /// happens when the model has no drift profile or the queue is full.
  void offer(const std::shared_ptr<const ServedModel>& model, std::vector<std::string> texts,
             std::shared_ptr<const BatchModel::Input> encoded, std::vector<std::string> images = {});

 private:
  void run();
  const std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Item {
    std::shared_ptr<const ServedModel> model;
    std::vector<std::string> texts;
    std::shared_ptr<const BatchModel::Input> encoded;
    std::vector<std::string> images;  ///< PNG/JPEG bytes, one per input, when the model reads images
  };
  std::deque<Item> queue_;
  std::size_t queued_texts_ = 0;
  bool stop_ = false;
  bool idle_ = false;  // the thread waits for a first offer (not collecting a batch)
  std::thread thread_;
};

}  // namespace kiln::serve
