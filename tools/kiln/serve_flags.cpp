#include "serve_flags.h"

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/serve/auth_token.h"

namespace kiln::cli {

void add_serve_flags(CLI::App& cmd, ServeFlags& f) {
  auto& o = f.options;
  cmd.add_option("artifact", f.artifact,
                 "Artifact directory (the --out/model of kiln train; the run directory --out works too), or a model "
                 "repository: a directory with one artifact per subdirectory, each served under its subdirectory's name")
      ->required();
  cmd.add_option("--host", o.host, "Address to bind (0.0.0.0 for every interface)")->capture_default_str();
  cmd.add_option("--port", o.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  cmd.add_option("--http-threads", o.http_threads,
                 "Threads that parse and encode requests (connections need none: one event loop serves them)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd.add_option("--max-connections", o.max_connections, "Open connections beyond which new ones get 503 and are closed")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd.add_option("--header-timeout-s", o.header_timeout_s, "Seconds a request's headers may take to arrive (then 408)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd.add_option("--body-timeout-s", o.body_timeout_s, "Seconds a request's body may take to arrive (then 408)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd.add_option("--keep-alive-timeout-s", o.keep_alive_timeout_s, "Seconds an idle keep-alive connection stays open")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd.add_option("--model-root", o.model_root,
                 "Load and reload read artifacts under this directory only (default: the repository, or the served "
                 "artifact's parent)");
  cmd.add_option("--model-name", o.model_name,
                 "Name of a single served artifact's model on /v1/models/{name} and /v2/models/{name} (default: its "
                 "directory's name)");
  cmd.add_option("--default-model", o.default_model,
                 "The repository's model that /v1/predict, /v1/model and /readyz serve (default: the only one)");
  cmd.add_option("--max-batch", o.batching.max_batch, "Most texts per forward pass (dynamic batching; 1 = off)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16))
      ->capture_default_str();
  cmd.add_option("--max-delay-ms", o.batching.max_delay_ms,
                 "Longest wait for more texts while other requests are arriving")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  cmd.add_option("--max-queue", o.batching.max_queue, "Texts waiting before requests get 503 + Retry-After")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  cmd.add_option("--inline-max-us", o.batching.inline_max_us,
                 "A model whose forward passes measured under this many microseconds batches the requests of "
                 "each event-loop round as one task on one thread, instead of per request through "
                 "--http-threads and --inference-workers (0 = never)")
      ->check(CLI::Range(0.0, 100000.0))
      ->capture_default_str();
  cmd.add_option("--inference-threads", o.inference_threads,
                 "Threads inside each forward pass (0 = --threads)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd.add_option("--inference-workers", o.batching.workers, "Threads running forward passes")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd.add_option("--max-body-bytes", o.limits.max_body_bytes, "Largest request body")
      ->check(CLI::Range(std::size_t{16}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--max-texts", o.limits.max_texts, "Most texts per request")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd.add_option("--max-text-bytes", o.limits.max_text_bytes, "Longest text (UTF-8 bytes)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--max-image-bytes", o.limits.max_image_bytes, "Largest image per input (PNG/JPEG bytes, after base64)")
      ->check(CLI::Range(std::size_t{64}, std::size_t{1} << 30))->capture_default_str();
  cmd.add_option("--max-image-pixels", o.limits.max_image_pixels, "Largest image per input (width x height)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 32))->capture_default_str();
  cmd.add_option("--device", o.device, "Where the model runs: cpu | cuda[:N]")->capture_default_str();
  cmd.add_option("--drift-window", o.drift_window, "Texts in the drift window")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->capture_default_str();
  cmd.add_option("--auth-token-file", f.auth_token_file, "File holding the bearer token the admin routes require");
  cmd.add_option("--drain-grace-s", f.drain_grace_s,
                 "On SIGTERM: seconds between readyz turning 503 and closing the listener")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd.add_option("--port-file", f.port_file, "Write the bound port to this file once listening (for --port 0)");
  cmd.add_flag("--no-page", f.no_page,
                "GET / answers 404 instead of the default model's page (its report, a live /metrics panel, a try-it box)");
  add_feedback_flags(cmd, f);
}

}  // namespace kiln::cli
