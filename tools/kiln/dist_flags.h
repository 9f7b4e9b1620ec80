// Data-parallel flags of `kiln train` and `kiln run` (--nproc, --nnodes, --node-rank, --master-addr,
// --master-port, --dist-timeout) and torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), resolved into what this process does: train alone,
// start the workers of this node (the launcher), or be one rank (started by Kiln or another launcher).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "kiln/train/data_parallel.h"
#include "kiln/train/trainer.h"

namespace kiln::cli {

struct DistPlan {
  enum class Role { kSingle, kLauncher, kWorker };
  Role role = Role::kSingle;
  train::DistOptions options;  ///< the job (rank meaningful for workers)
  int nproc = 1;               ///< processes on this node
  int node_rank = 0;
  int local_rank = 0;
  bool threads_given = false;  ///< --threads was given (else each process gets cores / nproc)
  [[nodiscard]] bool parallel() const { return role != Role::kSingle; }
};

class DistFlags {
 public:
  void add_to(CLI::App& cmd);
  /// Flags and environment together. Throws ConfigError when they contradict each other or are out
  /// of range (naming the flag or variable, the value and the fix).
  [[nodiscard]] DistPlan resolve() const;

 private:
  CLI::App* cmd_ = nullptr;
  int nproc_ = 1, nnodes_ = 1, node_rank_ = 0, master_port_ = 0;
  std::string master_addr_;
  double timeout_s_ = 300;
  double bucket_mb_ = 25;
  [[nodiscard]] bool given(const char* flag) const { return cmd_ && cmd_->count(flag) > 0; }
};

/// The training options a data-parallel job cannot run (checked before any process starts, so a
/// bad combination fails once): train.solver other than minibatch, a device other than cpu, a
/// global batch smaller than the job. Throws ConfigError naming the flag and the fix.
void check_data_parallel(const train::TrainerOptions& trainer, const DistPlan& plan);

/// Launcher: runs this node's `plan.nproc` workers (this program, same arguments, torchrun's
/// variables set), passes their output through (ranks > 0 prefixed "[rank N] ") and returns when all
/// succeeded. When one fails, the others get --dist-timeout plus a grace period to stop on their own
/// (they name the failed rank), then are killed; throws Error naming the first rank that failed and
/// how (exit code or signal).
void launch_workers(const DistPlan& plan);

/// Worker: sets this process's threads (cores / nproc unless --threads was given) and joins the job.
[[nodiscard]] std::unique_ptr<train::DataParallel> join_as_worker(const DistPlan& plan);

/// Runs `body` as this rank: a kiln::Error or other exception is announced to the other ranks
/// (so their errors name this rank and its message) and rethrown.
template <typename F>
void run_as_rank(train::DataParallel* dp, F&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    if (dp) dp->announce_failure(e.what());
    throw;
  }
}

}  // namespace kiln::cli
