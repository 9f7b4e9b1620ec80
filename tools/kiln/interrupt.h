// Ctrl-C for verbs that stop cleanly (tune): SIGINT and SIGTERM set a flag the library polls.
#pragma once

#include <signal.h>

#include <atomic>

namespace kiln::cli {

/// While it lives, SIGINT and SIGTERM set flag() instead of ending the process; the handlers
/// before it are restored when it ends. One at a time per process.
class InterruptScope {
 public:
  InterruptScope();
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  /// True once a signal arrived (stays true for the process).
  [[nodiscard]] static const std::atomic<bool>* flag();

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace kiln::cli
