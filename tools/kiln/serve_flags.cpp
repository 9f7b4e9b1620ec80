#include "serve_flags.h"

#include <filesystem>

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
  // The feedback loop.
  auto& fb = f.feedback;
  auto& lo = fb.learn;
  auto* g = cmd.add_option_group("Feedback loop", "Learning from labelled feedback (POST /v1/feedback)");
  g->add_option("--feedback-token-file", f.feedback_token_file,
                "File holding the bearer token POST /v1/feedback requires; turns the feedback loop on");
  g->add_option("--state-dir", fb.state_dir,
                "Feedback log, replay buffer and promoted versions (default: NAME.learn beside the served artifact; "
                "REPO.learn/NAME for a repository's model)");
  g->add_option("--feedback-model", fb.model, "The model that learns from feedback (default: the default model)");
  g->add_option("--feedback-max-items", fb.max_items_per_request, "Most items per feedback request (429 beyond)")
      ->capture_default_str();
  g->add_option("--feedback-max-items-per-minute", fb.max_items_per_minute,
                "Most feedback items one token may send in any minute (429 beyond)")
      ->capture_default_str();
  g->add_flag("--allow-new-labels", lo.update.allow_new_labels,
              "Accept labels the model lacks and learn them as new classes (grows the head)");
  g->add_option("--update-every", lo.update_every, "New (trained-on) feedback items between gated updates")
      ->capture_default_str();
  g->add_option("--update-interval", fb.update_interval_s,
                "Seconds after which waiting items are learnt even if fewer than --update-every (0 = off)")
      ->capture_default_str();
  g->add_option("--max-regression", lo.update.max_regression,
                "Gate: macro-F1 points a candidate may lose on the gate set and still be promoted")
      ->capture_default_str();
  g->add_option("--improvement-alpha", lo.update.improvement_alpha,
                "Gate: the rise on recent feedback must pass a sign test at this level (1 = any rise counts)")
      ->capture_default_str();
  g->add_option("--gate-fraction", lo.gate_fraction, "Share of the feedback held out for the gate, never trained on")
      ->capture_default_str();
  g->add_option("--buffer", f.buffer,
                "Replay buffer: reservoir, balanced (per class), recent, seed (the flow's: recent, 1000, batch 32)")
      ->capture_default_str();
  g->add_option("--capacity", f.capacity, "Items the replay buffer keeps")->capture_default_str();
  g->add_option("--batch", f.batch, "Examples per optimizer step of an update")->capture_default_str();
  g->add_option("--replay-ratio", lo.buffer.replay_ratio, "Replayed items per new item in an update (0 = no replay)")
      ->capture_default_str();
  g->add_option("--update-epochs", lo.update.epochs, "Passes over each update's training mix")->capture_default_str();
  g->add_option("--learn-seed", lo.update.seed, "Seeds the buffer, the gate split and the updates")->capture_default_str();
}

std::shared_ptr<learn::FeedbackService> make_feedback_service(const CLI::App& cmd, ServeFlags& f) {
  if (f.feedback_token_file.empty()) {
    for (const char* flag : {"--state-dir", "--feedback-model", "--feedback-max-items", "--feedback-max-items-per-minute",
                             "--allow-new-labels", "--update-every", "--update-interval", "--max-regression",
                             "--improvement-alpha", "--gate-fraction", "--buffer", "--capacity", "--batch", "--replay-ratio", "--update-epochs",
                             "--learn-seed"}) {
      if (cmd.count(flag)) {
        throw ConfigError(std::string(flag) + " configures the feedback loop, which is off; add --feedback-token-file FILE "
                          "to turn it on");
      }
    }
    return nullptr;
  }
  const auto token = serve::read_auth_token_file(f.feedback_token_file);
  if (token.readable_by_others) core::warn("--feedback-token-file " + f.feedback_token_file + " is readable by others; chmod 600 it");
  auto& fb = f.feedback;
  fb.token = token.token;
  // A directory with neither DIR/kiln.json nor DIR/model/kiln.json is a model repository.
  std::error_code ec;
  const std::filesystem::path dir(f.artifact);
  if (!std::filesystem::exists(dir / "kiln.json", ec) && !std::filesystem::exists(dir / "model" / "kiln.json", ec)) {
    fb.repository = f.artifact;
  }
  auto& b = fb.learn.buffer;
  const double ratio = b.replay_ratio;
  if (f.buffer == "seed") {
    b = learn::seed_preset();
    if (cmd.count("--capacity")) b.capacity = f.capacity;
    if (cmd.count("--batch")) b.batch_size = f.batch;
  } else {
    b.mode = learn::parse_buffer_mode(f.buffer, "--buffer (or seed)");
    b.capacity = f.capacity;
    b.batch_size = f.batch;
  }
  b.replay_ratio = ratio;
  b.seed = fb.learn.update.seed;
  return std::make_shared<learn::FeedbackService>(fb);
}

}  // namespace kiln::cli
