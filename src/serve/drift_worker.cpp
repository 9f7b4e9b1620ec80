#include "drift_worker.h"

#include <algorithm>

#include "kiln/core/log.h"
#include "served_model.h"

namespace kiln::serve {

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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || queued_texts_ + n > max_queued_) return;  // saturated: sample
    queued_texts_ += n;
    if (!model->reads_images()) images.clear();
    queue_.push_back(Item{model, std::move(texts), std::move(encoded), std::move(images)});
  }
  cv_.notify_one();
}

void DriftWorker::run() {
  for (;;) {
    Item item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      queued_texts_ -= std::max(item.texts.size(), item.images.size());
    }
    try {
      item.model->observe_drift(item.texts, item.encoded.get(), item.images);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      core::warn("drift measurement failed: " + what.substr(0, what.find('\n')));
    }
  }
}

}  // namespace kiln::serve
