// kiln serve DIR: the HTTP model server, over one artifact or a model repository. Flags, the auth token file, signals and exit codes;
// the server itself lives in the serve module.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <memory>
#include <thread>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/version.h"
#include "kiln/report/live_page.h"
#include "kiln/serve/auth_token.h"
#include "kiln/serve/server.h"
#include "serve_flags.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

// Signals reach the server through a self-pipe: the handler only writes the signal number (async-
// signal-safe), one thread reads it and acts. Handlers are process-wide, so threads started before
// the server (BLAS pools) cannot swallow a signal with its default action.
int g_signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  const int saved = errno;
  [[maybe_unused]] const auto n = ::write(g_signal_pipe[1], &b, 1);
  errno = saved;
}

void install_signal_pipe() {
  if (::pipe(g_signal_pipe) != 0) throw IoError(std::string("cannot create the signal pipe: ") + std::strerror(errno));
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaction(sig, &sa, nullptr);
}

}  // namespace

void add_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* cmd = app.add_subcommand("serve", ml_verb_description("serve"));
  add_serve_flags(*cmd, *f);
  cmd->callback([f, cmd]() {
    if (!f->auth_token_file.empty()) {
      const auto token = serve::read_auth_token_file(f->auth_token_file);
      if (token.readable_by_others) core::warn("--auth-token-file " + f->auth_token_file + " is readable by others; chmod 600 it");
      f->options.auth_token = token.token;
    }
    if (auto feedback = make_feedback_service(*cmd, *f)) {
      if (!serve::is_loopback_host(f->options.host) && f->options.auth_token.empty()) {
        throw ConfigError("--feedback-token-file on --host " + f->options.host +
                          " needs --auth-token-file too (POST /v1/admin/rollback is an admin route)");
      }
      f->options.extensions.push_back(feedback);
    }
    install_signal_pipe();  // before the server starts any thread (see above)

    if (!f->no_page) {
      f->options.home_page = [](const std::string& dir, const std::string& name) {
        report::LivePageOptions o;
        o.generator = "kiln " + kiln::version();
        return report::server_page(dir, name, o);
      };
    }
    serve::Server server(f->artifact, f->options);
    server.bind();
    // Atomically: whoever polls the file for the port never reads it half-written.
    if (!f->port_file.empty()) core::write_file_atomic(f->port_file, std::to_string(server.port()) + "\n");
    std::thread signal_thread([&server, grace = f->drain_grace_s] {
      for (;;) {
        unsigned char b = 0;
        const auto n = ::read(g_signal_pipe[0], &b, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        const int sig = b;
        if (sig == 0) return;  // run() ended on its own
        if (sig == SIGHUP) {
          // Every loaded model, each from its own directory; one that fails keeps its previous artifact.
          for (const auto& name : server.model_names()) {
            try {
              server.load_model(name);
            } catch (const std::exception& e) {
              core::warn("serve: reload of model " + name + " on SIGHUP failed, its previous artifact keeps serving: " +
                         e.what());
            }
          }
          continue;
        }
        core::info(std::string("serve: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                   ": draining (readyz 503), then closing after in-flight requests");
        server.begin_drain();
        if (grace > 0) std::this_thread::sleep_for(std::chrono::duration<double>(grace));
        server.shutdown();
        return;
      }
    });
    const auto names = server.model_names();
    std::string served = names.size() == 1 ? f->artifact : f->artifact + " (" + std::to_string(names.size()) + " models)";
    core::info("serve: " + served + ", default model " + server.default_model() + " (version " + server.model_version() +
               ") on http://" + f->options.host + ":" + std::to_string(server.port()) +
               "  (" + (f->no_page ? "" : "GET / the default model's page, ") +
               "POST /v1/predict, POST /v1/models/{name}/predict, GET /metrics)");
    server.run();
    // run() also returns when the listener fails: then wake the signal thread so it can end.
    if (!server.draining()) {
      const unsigned char stop = 0;
      [[maybe_unused]] const auto n = ::write(g_signal_pipe[1], &stop, 1);
    }
    signal_thread.join();
    core::info("serve: stopped");
  });
}

}  // namespace kiln::cli
