// kiln: the command-line entry point. Catches once: exit 2 for usage/config errors, 1 for
// data/runtime errors, message on stderr, never a stack trace.
#ifdef KILN_CLI_ML
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "kiln/core/cpu.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "verbs.h"

#ifdef KILN_CLI_ML
#include <array>
#include <filesystem>
#include <memory>

#include "kiln/pipeline/plan_data.h"
#include "kiln/train/data_parallel.h"
#include "kiln/train/step_probe.h"
namespace kiln::cli {
void add_explain(CLI::App& app);  // tools/kiln/explain.cpp
}  // namespace kiln::cli
#endif

namespace kiln::cli {
namespace {
std::vector<std::string>& arguments() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace
void set_process_arguments(int argc, char** argv) { arguments().assign(argv, argv + argc); }
const std::vector<std::string>& process_arguments() { return arguments(); }
}  // namespace kiln::cli

namespace {

int run(int argc, char** argv) {
  kiln::cli::set_process_arguments(argc, argv);
#ifdef KILN_CLI_ML
  kiln::cli::set_plan_probe(&kiln::train::time_step_kernels);
  kiln::cli::set_plan_data_probe(&kiln::pipeline::profile_plan_data);
  kiln::cli::set_metrics_fetcher(&kiln::cli::fetch_metrics_over_http);
#endif
#ifndef KILN_CLI_ML
  {
    const std::string verb = kiln::cli::find_verb(argc, argv);
    for (const auto& v : kiln::cli::ml_verbs()) {
      if (verb == v.name) {
        kiln::core::prepare_process(argv);  // nothing loaded here yet: kiln-ml starts with the right environment
        return kiln::cli::exec_ml_binary(argv);
      }
    }
    if (verb == "tune") kiln::core::prepare_process(argv);  // trials inherit it
  }
#endif
  CLI::App app{"kiln: text classification from raw data to a served, monitored model"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every verb");
  int threads = 0;
  app.add_option("--threads", threads, "Threads for Kiln and LibTorch (default: all cores)")
      ->check(CLI::Range(1, 4096));
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Print only results and errors");
  app.parse_complete_callback([&]() {
    kiln::core::set_threads(threads > 0 ? threads : kiln::core::hardware_threads());
#ifdef KILN_CLI_ML
    at::set_num_threads(kiln::core::threads());  // one policy for Kiln's loops, LibTorch's and the BLAS's
    kiln::core::set_blas_threads(kiln::core::threads());
    at::set_num_interop_threads(1);
#endif
    if (quiet) kiln::core::set_log_level(kiln::core::LogLevel::kWarning);
  });

  kiln::cli::add_data(app);
  kiln::cli::add_prepare(app);
  kiln::cli::add_tfidf(app);
  kiln::cli::add_tokenize(app);
  kiln::cli::add_vocab(app);
  kiln::cli::add_tune(app);
  kiln::cli::add_report(app);
  kiln::cli::add_plan(app);
  kiln::cli::add_version(app);
#ifdef KILN_CLI_ML
  kiln::cli::add_train(app);
  kiln::cli::add_evaluate(app);
  kiln::cli::add_predict(app);
  kiln::cli::add_run(app);
  kiln::cli::add_serve(app);
  kiln::cli::add_doctor(app);
  kiln::cli::add_pretrain(app);
  kiln::cli::add_embed(app);
  kiln::cli::add_optimize(app);
  kiln::cli::add_export(app);
  kiln::cli::add_learn(app);
  kiln::cli::add_explain(app);
  {
    // Hidden: ranks 1..N-1 of `kiln plan --gpu cpu --n N`'s all-reduce timing, as processes
    // (kiln::train::time_allreduce starts them).
    auto peer = std::make_shared<std::array<std::int64_t, 4>>();
    auto* cmd = app.add_subcommand("collective-peer", "")->group("");
    cmd->add_option("--rank", (*peer)[0])->required();
    cmd->add_option("--ranks", (*peer)[1])->required();
    cmd->add_option("--port", (*peer)[2])->required();
    cmd->add_option("--bytes", (*peer)[3])->required();
    cmd->callback([peer] {
      const auto& v = *peer;
      kiln::train::run_collective_peer(static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2]), v[3]);
    });
    kiln::train::set_collective_peer_program(
        {std::filesystem::read_symlink("/proc/self/exe").string(), "-q", "--threads", "1", "collective-peer"});
  }
#else
  // Listed for --help; running one goes through exec_ml_binary above.
  for (const auto& v : kiln::cli::ml_verbs()) app.add_subcommand(v.name, v.description)->allow_extras();
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and a usage hint
    return 2;
  } catch (const kiln::ConfigError& e) {
    std::cerr << "kiln: error: " << e.what() << '\n';
    return 2;
  } catch (const kiln::Error& e) {
    std::cerr << "kiln: error: " << e.what() << '\n';
    return 1;
#ifdef KILN_CLI_ML
  } catch (const c10::Error& e) {
    std::cerr << "kiln: internal error: " << e.what_without_backtrace()
              << "\n(this is a bug in kiln; please report it with the command that caused it)\n";
    return 1;
#endif
  } catch (const std::exception& e) {
    std::cerr << "kiln: internal error: " << e.what()
              << "\n(this is a bug in kiln; please report it with the command that caused it)\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef KILN_CLI_ML
  kiln::core::prepare_process(argv);  // before LibTorch's first op: BLAS kernels, OpenMP wait policy
#endif
  const int rc = run(argc, argv);
#if defined(KILN_CLI_ML) && !defined(KILN_SANITIZE_BUILD)
  // Every verb has finished its work and closed its files by now; LibTorch's static destructors
  // (about a tenth of kiln-ml's start-up and shut-down instructions) change nothing on disk.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(rc);
#endif
  return rc;
}
