#include "drift_worker.h"

#include <algorithm>
#include <chrono>

#include "kiln/core/log.h"
#include "served_model.h"

namespace kiln::serve {

namespace {

/// After a first offer wakes the thread, how long it collects more before measuring them all.
constexpr auto kDriftBatchWindow = std::chrono::milliseconds(5);

}  // namespace

DriftWorker::DriftWorker(std::size_t max_queued_texts) : max_queued_(max_queued_texts) {
  thread_ = std::thread([this] { run(); });
}

DriftWorker::~DriftWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DriftWorker::offer(const std::shared_ptr<const ServedModel>& model, std::vector<std::string> texts,
                        std::shared_ptr<const BatchModel::Input> encoded, std::vector<std::string> images) {
  if (!model->has_drift()) return;
  const std::size_t n = std::max(texts.size(), images.size());
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || queued_texts_ + n > max_queued_) return;  // saturated: sample
    queued_texts_ += n;
    if (!model->reads_images()) images.clear();
    queue_.push_back(Item{model, std::move(texts), std::move(encoded), std::move(images)});
    // Wake the thread for a first offer, or when half the queue is used; else it is collecting and
    // measures these at the end of its window.
    wake = idle_ || queued_texts_ * 2 >= max_queued_;
    if (wake) idle_ = false;
  }
  if (wake) cv_.notify_one();
}

void DriftWorker::run() {
  for (;;) {
    std::deque<Item> items;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (queue_.empty() && !stop_) {
        idle_ = true;
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        idle_ = false;
        // Collect what else arrives within the window (offers do not wake the thread meanwhile).
        cv_.wait_for(lock, kDriftBatchWindow, [&] { return stop_ || queued_texts_ * 2 >= max_queued_; });
      }
      if (queue_.empty()) return;  // stopping and drained
      items.swap(queue_);
      queued_texts_ = 0;
    }
    for (auto& item : items) {
      try {
        item.model->observe_drift(item.texts, item.encoded.get(), item.images);
      } catch (const std::exception& e) {
        const std::string what = e.what();
        core::warn("drift measurement failed: " + what.substr(0, what.find('\n')));
      }
    }
  }
}

}  // namespace kiln::serve
