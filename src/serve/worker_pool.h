// The HTTP server's worker threads: run offload()ed request work (parsing, encoding, reloads) off
// the event loop, first in, first out. A task that throws is logged and dropped.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::serve::http {

/// Thread-safe. The destructor runs every task already posted, then joins.
class WorkerPool {
 public:
  explicit WorkerPool(int n);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  void post(std::function<void()> fn);

 private:
  void work();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kiln::serve::http
