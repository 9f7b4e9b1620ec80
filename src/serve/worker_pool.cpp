#include "worker_pool.h"

#include <exception>
#include <string>

#include "kiln/core/log.h"

namespace kiln::serve::http {

WorkerPool::WorkerPool(int n) {
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    q_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void WorkerPool::work() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      fn = std::move(q_.front());
      q_.pop_front();
    }
    try {
      fn();
    } catch (const std::exception& e) {
      core::warn(std::string("serve: a request task failed: ") + e.what());
    } catch (...) {
      core::warn("serve: a request task failed with an unknown exception");
    }
  }
}

}  // namespace kiln::serve::http
