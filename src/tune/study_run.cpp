#include "kiln/tune/study_run.h"

#include <filesystem>

#include "kiln/core/error.h"
#include "kiln/tune/study_setup.h"
#include "kiln/tune/study_table.h"

namespace fs = std::filesystem;

namespace kiln::tune {

StudyRun::StudyRun(StudyRunOptions options) : options_(std::move(options)) {
  if (options_.config_path.empty()) throw ConfigError("tune: no config file given; name a tune.yaml");
  config_ = load_tune_config(options_.config_path);
  const StudyLocation loc = locate_study(options_.study, options_.config_path, options_.out, options_.storage);
  options_.study = loc.name;
  options_.out = loc.out;
  options_.storage = loc.url;
  if (options_.tuner.worker.empty()) options_.tuner.worker = worker_id();
  validate(options_.tuner);

  std::error_code ec;
  fs::create_directories(options_.out, ec);
  if (ec) {
    throw IoError("cannot create the study directory " + options_.out + ": " + ec.message() + "; choose another --out");
  }
  if (options_.tuner.trials_dir.empty()) options_.tuner.trials_dir = fs::absolute(fs::path(options_.out) / "trials", ec);
  storage_ = open_storage(options_.storage);
  study_ = create_or_resume_study(*storage_, options_.study, config_, options_.storage);

  options_.strategy.study_name = options_.study;
  options_.strategy.parallel = options_.tuner.jobs > 1 || options_.storage.rfind("postgres", 0) == 0;
  strategy_ = make_strategy(config_, options_.strategy);
}

std::vector<Trial> StudyRun::trials() const { return storage_->trials(study_.id); }

std::string StudyRun::describe() const {
  const StateCounts c = count_states(trials());
  return "study " + options_.study + " in " + mask_url_password(options_.storage) + ": " +
         std::to_string(c.running + c.complete + c.pruned + c.failed) + " trials so far (" +
         std::to_string(c.complete + c.pruned) + " complete or pruned); trials run in " +
         options_.tuner.trials_dir.string();
}

TuneSummary StudyRun::run(Objective& objective, TunerCallbacks callbacks, const std::atomic<bool>* interrupt) {
  Tuner tuner(*storage_, study_, config_.space, *strategy_.sampler, strategy_.prune_fn(), objective, options_.tuner,
              std::move(callbacks));
  strategy_.attach(tuner);
  TuneSummary summary = tuner.run(interrupt);
  if (summary.reason == StopReason::kConfigError) {
    throw ConfigError(summary.config_error + "\n(every trial would fail the same way; fix " + options_.config_path + ")");
  }
  return summary;
}

std::optional<BestConfigFile> StudyRun::write_best(const TuneSummary& summary) const {
  if (!summary.best) return std::nullopt;
  BestConfigFile file = best_config_file(config_, options_.study, *summary.best, options_.out, options_.best_config_out);
  write_best_config(file);
  return file;
}

}  // namespace kiln::tune
