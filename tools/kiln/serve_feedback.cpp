// kiln serve's feedback-loop flags (--feedback-token-file and the learning flags) and the
// FeedbackService they build.
#include <filesystem>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/serve/auth_token.h"
#include "serve_flags.h"

namespace kiln::cli {

void add_feedback_flags(CLI::App& cmd, ServeFlags& f) {
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
  g->add_option("--shadow", fb.shadow_requests,
                "A candidate that passes the gate first answers a copy of the next N predict requests; its agreement "
                "with the served model is reported before it is promoted (0 = promote at once)")
      ->capture_default_str();
  g->add_flag("--no-drift-updates", f.no_drift_updates,
              "Do not start an update when a drift detector (ADWIN, Page-Hinkley) fires on the feedback's error rate");
  g->add_option("--update-epochs", lo.update.epochs, "Passes over each update's training mix")->capture_default_str();
  g->add_option("--learn-seed", lo.update.seed, "Seeds the buffer, the gate split and the updates")->capture_default_str();
}

std::shared_ptr<learn::FeedbackService> make_feedback_service(const CLI::App& cmd, ServeFlags& f) {
  if (f.feedback_token_file.empty()) {
    for (const char* flag : {"--state-dir", "--feedback-model", "--feedback-max-items", "--feedback-max-items-per-minute",
                             "--allow-new-labels", "--update-every", "--update-interval", "--max-regression",
                             "--improvement-alpha", "--gate-fraction", "--shadow", "--no-drift-updates", "--buffer", "--capacity", "--batch", "--replay-ratio", "--update-epochs",
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
  fb.learn.update_on_drift = !f.no_drift_updates;
  b.seed = fb.learn.update.seed;
  return std::make_shared<learn::FeedbackService>(fb);
}

}  // namespace kiln::cli
