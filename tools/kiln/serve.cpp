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
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct ServeFlags {
  std::string artifact;
  serve::ServerOptions options;
  std::string auth_token_file;
  double drain_grace_s = 0;
  std::string port_file;
  bool no_page = false;
};

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
  auto& o = f->options;
  cmd->add_option("artifact", f->artifact,
                  "Artifact directory (the --out/model of kiln train; the run directory --out works too), or a model "
                  "repository: a directory with one artifact per subdirectory, each served under its subdirectory's name")
      ->required();
  cmd->add_option("--host", o.host, "Address to bind (0.0.0.0 for every interface)")->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--http-threads", o.http_threads,
                  "Threads that parse and encode requests (connections need none: one event loop serves them)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--max-connections", o.max_connections, "Open connections beyond which new ones get 503 and are closed")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--header-timeout-s", o.header_timeout_s, "Seconds a request's headers may take to arrive (then 408)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--body-timeout-s", o.body_timeout_s, "Seconds a request's body may take to arrive (then 408)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--keep-alive-timeout-s", o.keep_alive_timeout_s, "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--model-root", o.model_root,
                  "Load and reload read artifacts under this directory only (default: the repository, or the served "
                  "artifact's parent)");
  cmd->add_option("--model-name", o.model_name,
                  "Name of a single served artifact's model on /v1/models/{name} and /v2/models/{name} (default: its "
                  "directory's name)");
  cmd->add_option("--default-model", o.default_model,
                  "The repository's model that /v1/predict, /v1/model and /readyz serve (default: the only one)");
  cmd->add_option("--max-batch", o.batching.max_batch, "Most texts per forward pass (dynamic batching; 1 = off)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16))
      ->capture_default_str();
  cmd->add_option("--max-delay-ms", o.batching.max_delay_ms,
                  "Longest wait for more texts while other requests are arriving")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  cmd->add_option("--max-queue", o.batching.max_queue, "Texts waiting before requests get 503 + Retry-After")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--inference-threads", o.inference_threads,
                  "Threads inside each forward pass (0 = --threads)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--inference-workers", o.batching.workers, "Threads running forward passes")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o.limits.max_body_bytes, "Largest request body")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-texts", o.limits.max_texts, "Most texts per request")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-text-bytes", o.limits.max_text_bytes, "Longest text (UTF-8 bytes)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-image-bytes", o.limits.max_image_bytes, "Largest image per input (PNG/JPEG bytes, after base64)")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 30))->capture_default_str();
  cmd->add_option("--max-image-pixels", o.limits.max_image_pixels, "Largest image per input (width x height)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 32))->capture_default_str();
  cmd->add_option("--device", o.device, "Where the model runs: cpu | cuda[:N]")->capture_default_str();
  cmd->add_option("--drift-window", o.drift_window, "Texts in the drift window")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  cmd->add_option("--auth-token-file", f->auth_token_file, "File holding the bearer token the admin routes require");
  cmd->add_option("--drain-grace-s", f->drain_grace_s,
                  "On SIGTERM: seconds between readyz turning 503 and closing the listener")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--port-file", f->port_file, "Write the bound port to this file once listening (for --port 0)");
  cmd->add_flag("--no-page", f->no_page,
                "GET / answers 404 instead of the default model's page (its report, a live /metrics panel, a try-it box)");
  cmd->callback([f]() {
    if (!f->auth_token_file.empty()) {
      const auto token = serve::read_auth_token_file(f->auth_token_file);
      if (token.readable_by_others) core::warn("--auth-token-file " + f->auth_token_file + " is readable by others; chmod 600 it");
      f->options.auth_token = token.token;
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
