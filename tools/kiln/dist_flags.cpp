#include "dist_flags.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"

namespace kiln::cli {
namespace {

// An integer environment variable; nullopt when unset. Throws ConfigError when it is not an integer.
std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || x < 0 || x > (1 << 30)) {
    throw ConfigError(std::string(name) + "='" + v + "' is not a non-negative integer; the launcher (torchrun, Slurm, "
                      "a job spec) must set it to one, or unset it to let kiln launch with --nproc");
  }
  return static_cast<int>(x);
}

}  // namespace

void DistFlags::add_to(CLI::App& cmd) {
  cmd_ = &cmd;
  cmd.add_option("--nproc", nproc_,
                 "Data-parallel: train in N processes on this machine (LibTorch c10d, Gloo); --batch-size stays the "
                 "global batch, split over the processes")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd.add_option("--nnodes", nnodes_, "Data-parallel: machines in the job, each running --nproc processes")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd.add_option("--node-rank", node_rank_, "Data-parallel: this machine's index in [0, --nnodes)")
      ->check(CLI::Range(0, 4095))
      ->capture_default_str();
  cmd.add_option("--master-addr", master_addr_,
                 "Data-parallel: host of rank 0, which serves the rendezvous (default MASTER_ADDR, else 127.0.0.1)");
  cmd.add_option("--master-port", master_port_,
                 "Data-parallel: rendezvous port (default MASTER_PORT, else 29500; a free port for a one-machine job)")
      ->check(CLI::Range(1, 65535));
  cmd.add_option("--dist-timeout", timeout_s_,
                 "Data-parallel: seconds a rank waits for the others before stopping with an error naming the one "
                 "that does not answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--bucket-mb", bucket_mb_,
                 "Data-parallel: dense gradients are all-reduced in buckets of about this many MiB, each started as "
                 "soon as backward completes it (DDP's bucket_cap_mb)")
      ->check(CLI::Range(0.001, 4096.0))
      ->capture_default_str();
}

DistPlan DistFlags::resolve() const {
  DistPlan p;
  p.nproc = nproc_;
  p.node_rank = node_rank_;
  p.options.timeout_s = timeout_s_;
  p.options.bucket_bytes = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb_ * (1 << 20)));
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) p.options.interface = ifname;
  if (node_rank_ >= nnodes_) {
    throw ConfigError("--node-rank " + std::to_string(node_rank_) + " must be below --nnodes " +
                      std::to_string(nnodes_) + " (machines are numbered from 0)");
  }
  const char* env_addr = std::getenv("MASTER_ADDR");
  const auto env_port = env_int("MASTER_PORT");
  if (given("--master-addr") && env_addr && master_addr_ != env_addr) {
    throw ConfigError("--master-addr " + master_addr_ + " conflicts with MASTER_ADDR=" + env_addr + "; drop one of them");
  }
  if (given("--master-port") && env_port && master_port_ != *env_port) {
    throw ConfigError("--master-port " + std::to_string(master_port_) + " conflicts with MASTER_PORT=" +
                      std::to_string(*env_port) + "; drop one of them");
  }
  p.options.master_addr = given("--master-addr") ? master_addr_ : env_addr ? env_addr : "127.0.0.1";
  p.options.master_port = given("--master-port") ? master_port_ : env_port ? *env_port : 0;  // 0: pick later

  const auto rank = env_int("RANK");
  const auto world = env_int("WORLD_SIZE");
  if (rank || world) {  // started by a launcher (Kiln's own or torchrun-style)
    if (!rank || !world) {
      throw ConfigError(std::string(rank ? "RANK" : "WORLD_SIZE") + " is set but " + (rank ? "WORLD_SIZE" : "RANK") +
                        " is not; a launcher must set both (torchrun does), or unset both and use --nproc");
    }
    if (*world < 1 || *rank >= *world) {
      throw ConfigError("RANK=" + std::to_string(*rank) + " must be below WORLD_SIZE=" + std::to_string(*world));
    }
    const auto local_world = env_int("LOCAL_WORLD_SIZE");
    if (given("--nproc") && local_world && *local_world != nproc_) {
      throw ConfigError("--nproc " + std::to_string(nproc_) + " conflicts with LOCAL_WORLD_SIZE=" +
                        std::to_string(*local_world) + " set by the launcher; drop --nproc");
    }
    if ((given("--nproc") || given("--nnodes")) && nproc_ * nnodes_ != *world) {
      throw ConfigError("--nproc " + std::to_string(nproc_) + " x --nnodes " + std::to_string(nnodes_) +
                        " processes conflicts with WORLD_SIZE=" + std::to_string(*world) +
                        " set by the launcher; drop --nproc/--nnodes");
    }
    p.role = *world > 1 ? DistPlan::Role::kWorker : DistPlan::Role::kSingle;
    p.options.rank = *rank;
    p.options.world_size = *world;
    p.local_rank = env_int("LOCAL_RANK").value_or(*rank);
    p.nproc = local_world.value_or(given("--nproc") ? nproc_ : *world);
    if (p.options.master_port == 0) p.options.master_port = 29500;
  } else {
    p.options.world_size = nproc_ * nnodes_;
    p.role = p.options.world_size > 1 ? DistPlan::Role::kLauncher : DistPlan::Role::kSingle;
    if (p.role == DistPlan::Role::kLauncher && nnodes_ > 1 && p.options.master_port == 0) {
      p.options.master_port = 29500;  // machines must agree on it: no free-port search
    }
    for (const char* f : {"--nnodes", "--node-rank", "--master-addr", "--master-port"}) {
      if (p.role == DistPlan::Role::kSingle && given(f)) {
        throw ConfigError(std::string(f) + " applies to data-parallel training, but this run has one process; add "
                          "--nproc N (and --nnodes for several machines) or drop " + f);
      }
    }
  }
  p.threads_given = cmd_ && cmd_->get_parent() && cmd_->get_parent()->count("--threads") > 0;
  return p;
}

void check_data_parallel(const train::TrainerOptions& t, const DistPlan& plan) {
  const std::string job = std::to_string(plan.options.world_size) + " processes";
  if (t.solver != "minibatch") {
    throw ConfigError("train.solver " + t.solver + " runs in one process, but --nproc/WORLD_SIZE asks for " + job +
                      "; use a model trained by mini-batches (e.g. --model embedbag; the fasttext and logreg presets "
                      "use per-example SGD and L-BFGS) or drop --nproc");
  }
  if (t.device != "cpu") {
    throw ConfigError("data-parallel training runs on the CPU (Gloo) in this build, but --device is '" + t.device +
                      "'; use --device cpu or drop --nproc");
  }
  if (t.batch_size < plan.options.world_size) {
    throw ConfigError("--batch-size " + std::to_string(t.batch_size) + " is the global batch, split over " + job +
                      ", so a process would get no example; raise --batch-size to at least " +
                      std::to_string(plan.options.world_size) + " or lower --nproc");
  }
}

std::unique_ptr<train::DataParallel> join_as_worker(const DistPlan& plan) {
  if (!plan.threads_given) {  // one process per share of the cores, as the launcher would pass
    const int threads = std::max(1, core::hardware_threads() / std::max(1, plan.nproc));
    core::set_threads(threads);
    at::set_num_threads(threads);
    core::set_blas_threads(threads);
  }
  if (plan.options.rank > 0) core::set_log_level(core::LogLevel::kWarning);  // rank 0 speaks for the job
  return train::join_data_parallel(plan.options);
}

}  // namespace kiln::cli
