// The data-parallel launcher: this node's workers through the one subprocess runner. Flags,
// environment and a worker's join: dist_flags.cpp.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "dist_flags.h"
#include "interrupt.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/core/subprocess.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

// A TCP port nothing listens on now (the kernel's pick for port 0). Another program may take it
// before rank 0 binds it; rank 0 then fails naming --master-port.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw IoError("cannot find a free port for the rendezvous; give one with --master-port");
  return ntohs(a.sin_port);
}

std::string how_it_ended(const core::SubprocessResult& r) {
  if (r.exit_code > 128) {
    const int sig = r.exit_code - 128;
    const char* name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exited with code " + std::to_string(r.exit_code);
}

}  // namespace

void launch_workers(const DistPlan& plan) {
  DistPlan p = plan;
  if (p.options.master_port == 0) p.options.master_port = free_port();
  const int threads = p.threads_given ? core::threads() : std::max(1, core::hardware_threads() / p.nproc);
  const auto& args = process_arguments();
  std::vector<std::string> argv{std::filesystem::read_symlink("/proc/self/exe").string()};
  if (!p.threads_given) argv.insert(argv.end(), {"--threads", std::to_string(threads)});
  argv.insert(argv.end(), args.begin() + 1, args.end());
  core::info("data-parallel: " + std::to_string(p.nproc) + " processes on this machine (ranks " +
             std::to_string(p.node_rank * p.nproc) + ".." + std::to_string(p.node_rank * p.nproc + p.nproc - 1) +
             " of " + std::to_string(p.options.world_size) + "), " + std::to_string(threads) +
             " thread(s) each, rendezvous " + p.options.master_addr + ":" + std::to_string(p.options.master_port));

  std::mutex out_mutex;
  std::atomic<bool> cancel{false};
  InterruptScope interrupts;  // Ctrl-C / SIGTERM: stop the workers (their group: TERM, then KILL)
  std::vector<core::SubprocessResult> results(static_cast<std::size_t>(p.nproc));
  std::vector<std::chrono::steady_clock::time_point> ended(results.size());
  std::vector<bool> done(results.size(), false);
  std::vector<std::exception_ptr> errors(results.size());
  std::vector<std::thread> workers;
  for (int i = 0; i < p.nproc; ++i) {
    workers.emplace_back([&, i] {
      const int rank = p.node_rank * p.nproc + i;
      core::SubprocessOptions so;
      so.env = {{"RANK", std::to_string(rank)},
                {"LOCAL_RANK", std::to_string(i)},
                {"WORLD_SIZE", std::to_string(p.options.world_size)},
                {"LOCAL_WORLD_SIZE", std::to_string(p.nproc)},
                {"GROUP_RANK", std::to_string(p.node_rank)},
                {"MASTER_ADDR", p.options.master_addr},
                {"MASTER_PORT", std::to_string(p.options.master_port)}};
      const std::string prefix = rank == 0 ? "" : "[rank " + std::to_string(rank) + "] ";
      auto relay = [&](core::OutputStream s, const std::string& line) {
        std::lock_guard<std::mutex> lock(out_mutex);
        (s == core::OutputStream::kStdout ? std::cout : std::cerr) << prefix << line << std::endl;
        return true;
      };
      try {
        results[i] = core::run_subprocess(argv, so, relay, &cancel);
      } catch (...) {
        errors[i] = std::current_exception();
        results[i].exit_code = 1;
      }
      std::lock_guard<std::mutex> lock(out_mutex);
      ended[i] = std::chrono::steady_clock::now();
      done[i] = true;
    });
  }
  // Once a worker has failed, the others get the collective timeout plus a grace period to notice
  // and stop on their own (naming it); then they are stopped.
  const auto grace = std::chrono::duration<double>(p.options.timeout_s + 15.0);
  std::optional<std::chrono::steady_clock::time_point> first_failure;
  for (;;) {
    bool all = true;
    {
      std::lock_guard<std::mutex> lock(out_mutex);
      for (std::size_t i = 0; i < done.size(); ++i) {
        all = all && done[i];
        if (done[i] && results[i].exit_code != 0 && !first_failure) first_failure = std::chrono::steady_clock::now();
      }
    }
    if (all) break;
    if (InterruptScope::flag()->load()) cancel = true;
    if (first_failure && std::chrono::steady_clock::now() - *first_failure > grace) cancel = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& t : workers) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  if (InterruptScope::flag()->load()) {
    throw Error("data-parallel run interrupted: the workers were stopped; the last checkpoint (if any) is in the run "
                "directory: add --resume to continue (with any --nproc)");
  }
  // The rank that failed first is the cause; the others' last lines say how they noticed.
  int first = -1;
  for (int i = 0; i < p.nproc; ++i) {
    if (results[i].exit_code != 0 && (first < 0 || ended[i] < ended[first])) first = i;
  }
  if (first < 0) return;
  std::string msg = "data-parallel run failed: rank " + std::to_string(p.node_rank * p.nproc + first) + " " +
                    how_it_ended(results[first]);
  for (int i = 0; i < p.nproc; ++i) {
    if (i == first || results[i].exit_code == 0) continue;
    msg += "; rank " + std::to_string(p.node_rank * p.nproc + i) +
           (results[i].stopped ? " was still running --dist-timeout + 15 s later and was stopped"
                               : " then " + how_it_ended(results[i]));
  }
  throw Error(msg + "; the last checkpoint (if any) is in the run directory: add --resume to continue (with any --nproc)");
}

}  // namespace kiln::cli
