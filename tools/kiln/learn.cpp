// kiln learn ARTIFACT --stream FILE|- --out DIR: continual learning over a labelled feedback stream
// (progressive validation, replay buffer, gated updates); the loop lives in kiln::learn::Learner.
#include <fstream>
#include <iostream>
#include <memory>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/learn/learner.h"
#include "train_common.h"
#include "verbs.h"

namespace kiln::cli {

void add_learn(CLI::App& app) {
  struct Flags {
    std::string artifact, stream, out, history, buffer = "reservoir";
    int64_t capacity = 1000, batch = 32, update_every = 100;
    double replay_ratio = 1.0, max_regression = 0.5, gate_fraction = 0.1, lr = 0, improvement_alpha = 1.0;
    int epochs = 2;
    uint64_t seed = 0;
    bool allow_new_labels = false, no_drift_updates = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("learn", ml_verb_description("learn"));
  cmd->add_option("artifact", f->artifact, "Served artifact to keep learning (OUT/model of kiln train)")->required();
  cmd->add_option("--stream", f->stream, "Labelled feedback, JSON lines {\"text\", \"label\"[, \"id\"]}; - = stdin")->required();
  cmd->add_option("--out", f->out, "State directory: versions/, curve.jsonl, buffer.json, state.json (resumed if it exists)")
      ->required();
  cmd->add_option("--history", f->history,
                  "Labelled rows already learnt (JSON lines, e.g. the training rows): put in the replay buffer "
                  "before the stream, not scored or trained on");
  cmd->add_option("--buffer", f->buffer,
                  "Replay buffer: reservoir (uniform over the stream), balanced (per class), recent (last N), "
                  "seed (the flow's: recent, 1000, batch 32)")
      ->capture_default_str();
  cmd->add_option("--capacity", f->capacity, "Items the buffer keeps")->capture_default_str();
  cmd->add_option("--batch", f->batch, "Examples per optimizer step of an update")->capture_default_str();
  cmd->add_option("--replay-ratio", f->replay_ratio, "Replayed items per new item in an update (0 = no replay)")
      ->capture_default_str();
  cmd->add_option("--update-every", f->update_every, "New items between updates")->capture_default_str();
  cmd->add_option("--max-regression", f->max_regression, "Gate: macro-F1 points the candidate may lose on the gate set")
      ->capture_default_str();
  cmd->add_option("--improvement-alpha", f->improvement_alpha,
                  "Gate: the rise on recent feedback must pass a sign test at this level (1 = any rise counts; "
                  "kiln serve's feedback loop uses 0.05)")
      ->capture_default_str();
  cmd->add_option("--gate-fraction", f->gate_fraction, "Share of the feedback held out for the gate, never trained on")
      ->capture_default_str();
  cmd->add_option("--epochs", f->epochs, "Passes over each update's training mix")->capture_default_str();
  cmd->add_option("--lr", f->lr, "Learning rate of updates (0 = the artifact's)")->capture_default_str();
  cmd->add_option("--seed", f->seed, "Seeds the buffer, the gate split and the updates")->capture_default_str();
  cmd->add_flag("--allow-new-labels", f->allow_new_labels, "Learn labels the model lacks as new classes (grows the head)");
  cmd->add_flag("--no-drift-updates", f->no_drift_updates, "Do not start an update when a drift detector fires");
  cmd->callback([f, cmd]() {
    learn::LearnOptions o;
    if (f->buffer == "seed") {
      o.buffer = learn::seed_preset();
      if (cmd->count("--capacity")) o.buffer.capacity = f->capacity;
      if (cmd->count("--batch")) o.buffer.batch_size = f->batch;
    } else {
      o.buffer.mode = learn::parse_buffer_mode(f->buffer, "--buffer (or seed)");
      o.buffer.capacity = f->capacity;
      o.buffer.batch_size = f->batch;
    }
    o.buffer.replay_ratio = f->replay_ratio;
    o.buffer.seed = f->seed;
    o.update.epochs = f->epochs;
    o.update.lr = f->lr;
    o.update.max_regression = f->max_regression;
    o.update.improvement_alpha = f->improvement_alpha;
    o.update.allow_new_labels = f->allow_new_labels;
    o.update.seed = f->seed;
    o.update_every = f->update_every;
    o.gate_fraction = f->gate_fraction;
    o.update_on_drift = !f->no_drift_updates;
    learn::validate(o);

    std::unique_ptr<std::ifstream> file;
    std::istream* in = &std::cin;
    if (f->stream != "-") {
      core::require_regular_file(f->stream, "--stream");
      file = std::make_unique<std::ifstream>(f->stream, std::ios::binary);
      in = file.get();
    }
    learn::Learner learner(artifact_arg(f->artifact), f->out, o);
    learner.on_message = [](const std::string& m) { core::info(m); };
    std::vector<learn::FeedbackItem> chunk;
    if (!f->history.empty()) {
      core::require_regular_file(f->history, "--history");
      std::ifstream hist(f->history, std::ios::binary);
      learn::FeedbackReader history(hist, f->history);
      while (auto item = history.next()) chunk.push_back(std::move(*item));
      learner.remember(chunk);
      chunk.clear();
    }
    learn::FeedbackReader reader(*in, f->stream);
    const auto chunk_size = static_cast<std::size_t>(std::min<int64_t>(f->update_every, 256));
    while (auto item = reader.next()) {
      chunk.push_back(std::move(*item));
      if (chunk.size() >= chunk_size) {
        learner.observe(chunk);
        chunk.clear();
      }
    }
    learner.observe(chunk);
    const auto s = learner.finish();
    std::cout << s.to_json().dump() << "\n";
  });
}

}  // namespace kiln::cli
