#include "kiln/core/parallel.h"


#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::core {
namespace {
std::atomic<int> g_threads{0};
}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_threads(int n) {
  if (n < 1) {
    throw ConfigError("threads must be >= 1, got " + std::to_string(n) +
                      "; omit --threads to use all " + std::to_string(hardware_threads()) + " cores");
  }
  g_threads = n;
}

int threads() {
  int n = g_threads.load();
  return n > 0 ? n : hardware_threads();
}

std::size_t chunk_count(std::size_t n, int max_chunks) {
  std::size_t k = static_cast<std::size_t>(max_chunks > 0 ? max_chunks : threads());
  return std::max<std::size_t>(1, std::min(k, n));
}

namespace {

/// One parallel_chunks call: its chunks are claimed one at a time, by the caller and by pool
/// threads, so a chunk never waits for a thread that is slow to wake (on a busy or virtual machine
/// a new or sleeping thread can take milliseconds to run).
struct Job {
  const std::function<void(std::size_t, std::size_t, std::size_t)>* fn = nullptr;
  std::size_t n = 0, k = 0;
  std::atomic<std::size_t> next{0};  ///< the next chunk to claim
  std::mutex mu;                     ///< guards done, first and the caller's wait
  std::condition_variable finished;
  std::size_t done = 0;
  std::exception_ptr first;

  /// Runs chunk c (c < k). Counts it done under mu, so the caller, which returns (destroying this
  /// Job) only after it sees every chunk done under mu, outlives every use here.
  void run(std::size_t c) {
    std::exception_ptr error;
    try {
      (*fn)(n * c / k, n * (c + 1) / k, c);
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    if (error && !first) first = error;
    if (++done == k) finished.notify_one();
  }
};

/// Threads that help with parallel_chunks' chunks, started on first need and kept for the process
/// (never destroyed: they sleep in wait() until there is work, and exit with the process).
class Pool {
 public:
  /// Offers `job`'s chunks to pool threads, at least `helpers` of which exist afterwards.
  void offer(Job& job, std::size_t helpers) {
    std::lock_guard<std::mutex> lock(mu_);
    while (started_ < helpers) {
      std::thread([this] { serve(); }).detach();
      ++started_;
    }
    jobs_.push_back(&job);
    if (helpers == 1) {
      work_.notify_one();
    } else {
      work_.notify_all();
    }
  }
  /// Takes `job` off the queue: no pool thread claims a chunk of it afterwards.
  void withdraw(Job& job) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(jobs_.begin(), jobs_.end(), &job);
    if (it != jobs_.end()) jobs_.erase(it);
  }

 private:
  void serve() {
    for (;;) {
      Job* job = nullptr;
      std::size_t c = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [&] { return !jobs_.empty(); });
        job = jobs_.front();
        c = job->next.fetch_add(1);
        // Claimed under mu_, so the job is alive (its caller withdraws it under mu_ first).
        if (c + 1 >= job->k) jobs_.pop_front();
        if (c >= job->k) continue;
      }
      job->run(c);
    }
  }

  std::mutex mu_;
  std::condition_variable work_;
  std::deque<Job*> jobs_;
  std::size_t started_ = 0;
};

Pool& pool() {
  // A forked child has none of its parent's threads: it starts its own pool (the parent's is left
  // untouched; its threads do not exist in the child).
  static std::atomic<Pool*> current{nullptr};
  static std::atomic<pid_t> owner{0};
  static std::mutex mu;
  const pid_t me = ::getpid();
  Pool* p = current.load(std::memory_order_acquire);
  if (p != nullptr && owner.load(std::memory_order_acquire) == me) return *p;
  std::lock_guard<std::mutex> lock(mu);
  p = current.load();
  if (p == nullptr || owner.load() != me) {
    p = new Pool();  // never deleted: its threads live as long as the process
    owner.store(me, std::memory_order_release);
    current.store(p, std::memory_order_release);
  }
  return *p;
}

}  // namespace

void parallel_chunks(std::size_t n, const std::function<void(std::size_t, std::size_t, std::size_t)>& fn,
                     int max_chunks) {
  const std::size_t k = chunk_count(n, max_chunks);
  if (k <= 1) {
    fn(0, n, 0);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.k = k;
  Pool& threads = pool();
  threads.offer(job, k - 1);
  for (std::size_t c = job.next.fetch_add(1); c < k; c = job.next.fetch_add(1)) job.run(c);
  threads.withdraw(job);
  std::unique_lock<std::mutex> lock(job.mu);
  job.finished.wait(lock, [&] { return job.done == k; });
  if (job.first) std::rethrow_exception(job.first);
}

}  // namespace kiln::core
