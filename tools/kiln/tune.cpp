// kiln tune: hyperparameter search over a tune.yaml (a training run of Kiln's own, or any command),
// with a study stored in SQLite or PostgreSQL so it can be resumed and shared by many workers.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/data/datasets.h"
#include "kiln/tune/command_objective.h"
#include "kiln/tune/study_run.h"
#include "kiln/tune/study_setup.h"
#include "kiln/tune/study_table.h"
#include "kiln/tune/train_objective.h"
#include "interrupt.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

struct TuneFlags {
  std::string config, storage, study, out, sampler = "tpe", pruner = "median", timeout, heartbeat_timeout = "60s";
  std::string best_config_out, cache_dir;
  int64_t trials = 50;
  int jobs = 1;
  uint64_t seed = 0;
  bool seed_given = false;
  bool show = false;
};

int show(const TuneFlags& f) {
  const tune::StudyLocation loc = tune::locate_study(f.study, f.config, f.out, f.storage);
  if (loc.name.empty()) throw ConfigError("--show needs --study NAME (or --config FILE, whose name is the default study)");
  auto storage = tune::open_storage(loc.url);
  const tune::StudyInfo study = tune::find_existing_study(*storage, loc.name, loc.url);
  std::cout << tune::study_listing(study, storage->trials(study.id), tune::stored_space(study));
  return 0;
}

// The objective: the config's command, or a training run of kiln-ml (next to this binary).
std::unique_ptr<tune::Objective> make_objective(const tune::TuneConfig& config, const TuneFlags& f) {
  if (config.kind == tune::ObjectiveKind::kCommand) return std::make_unique<tune::CommandObjective>(config.command);
  tune::TrainObjectiveOptions o;
  o.kiln_ml = kiln_ml_path();
  o.threads = std::max(1, core::threads() / f.jobs);
  o.cache_dir = f.cache_dir;
  if (::access(o.kiln_ml.c_str(), X_OK) != 0) {
    throw IoError("cannot run " + o.kiln_ml + ": training trials need kiln-ml next to kiln; rebuild (scripts/setup.sh)");
  }
  const std::string dataset = tune::dataset_to_fetch(config.train);
  if (!dataset.empty()) {  // fetched once here, not by every trial at the same time
    data::FetchOptions fo;
    fo.dir = f.cache_dir;
    core::info("fetching " + dataset);
    (void)data::fetch_dataset(dataset, fo);
  }
  return std::make_unique<tune::TrainObjective>(config.train, o);
}

int tune_study(const TuneFlags& f) {
  if (f.config.empty()) throw ConfigError("--config is required (or --show to print a study)");
  tune::StudyRunOptions o;
  o.config_path = f.config;
  o.study = f.study;
  o.out = f.out;
  o.storage = f.storage;
  o.best_config_out = f.best_config_out;
  o.tuner.n_trials = f.trials;
  o.tuner.timeout_s = f.timeout.empty() ? 0 : tune::parse_duration(f.timeout, "--timeout");
  o.tuner.jobs = f.jobs;
  o.tuner.heartbeat_timeout_s = tune::parse_duration(f.heartbeat_timeout, "--heartbeat-timeout");
  o.strategy.sampler = tune::parse_sampler_kind(f.sampler);
  o.strategy.pruner = tune::parse_pruner_kind(f.pruner);
  if (f.seed_given) o.strategy.seed = f.seed;
  tune::StudyRun run(o);
  for (const auto& w : run.strategy().warnings) core::warn(w);
  const auto objective = make_objective(run.config(), f);

  tune::TunerCallbacks cb;
  cb.on_trial_end = [](const tune::Trial& t) { std::cout << tune::trial_row(t) << std::endl; };
  cb.on_stale = [](const std::vector<int64_t>& numbers) {
    for (const auto n : numbers) {
      core::warn("trial " + std::to_string(n) + " had no heartbeat for too long (its worker died): marked failed");
    }
  };
  core::info(run.describe());
  std::cout << tune::table_header(run.config().metric_name) << "\n";
  tune::TuneSummary summary;
  {
    InterruptScope interrupts;
    summary = run.run(*objective, cb, InterruptScope::flag());
  }
  const auto trials = run.trials();
  core::info(tune::stop_line(summary, tune::count_states(trials)));
  const std::string importance = tune::importance_line(trials, run.config().space);
  if (!importance.empty()) std::cout << importance << "\n";
  if (const auto best = run.write_best(summary)) core::info("best " + best->kind + ": " + best->path);
  std::cout << tune::best_line(summary.best) << std::endl;
  if (summary.reason == tune::StopReason::kInterrupted) return 130;
  return summary.best ? 0 : 1;
}

}  // namespace

void add_tune(CLI::App& app) {
  auto f = std::make_shared<TuneFlags>();
  auto* cmd = app.add_subcommand("tune", "Tune hyperparameters: a study of trials over a search space (tune.yaml)");
  cmd->add_option("--config", f->config, "tune.yaml: search space, objective (a Kiln run config or a command), metric");
  cmd->add_option("--trials", f->trials, "Complete + pruned trials the study should hold (all workers and runs)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  cmd->add_option("--timeout", f->timeout, "Start no new trial after this long (90s, 10m, 2h; default: no limit)");
  cmd->add_option("--jobs", f->jobs, "Trials run at once by this process")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--storage", f->storage,
                  "Study storage: sqlite:////abs/path.db, a file path, or postgresql://user:pass@host:port/db "
                  "(default: sqlite in OUT/study.db)");
  cmd->add_option("--study", f->study, "Study name (default: the config file's name without extension)");
  cmd->add_option("--out", f->out, "Study directory: trials/, best config, default SQLite file (default: runs/tune/STUDY)");
  cmd->add_option("--sampler", f->sampler, "tpe | random | grid")->capture_default_str()->check(CLI::IsMember({"tpe", "random", "grid"}));
  cmd->add_option("--pruner", f->pruner, "median | hyperband | none")
      ->capture_default_str()
      ->check(CLI::IsMember({"median", "hyperband", "none"}));
  cmd->add_option("--seed", f->seed, "Sampler seed (default: random)");
  cmd->add_option("--heartbeat-timeout", f->heartbeat_timeout,
                  "A running trial without a heartbeat for this long belongs to a dead worker and is marked failed")
      ->capture_default_str();
  cmd->add_option("--best-config-out", f->best_config_out,
                  "Where to write the best trial's run config (default: OUT/best.yaml; command objectives: "
                  "OUT/best_params.yaml)");
  cmd->add_option("--cache-dir", f->cache_dir, "Dataset cache (default: ~/.cache/kiln/datasets)");
  cmd->add_flag("--show", f->show, "Print the trials of a study (finished or running), the importances and the best");
  cmd->callback([f, cmd]() {
    if (f->show) {
      for (const char* flag : {"--trials", "--timeout", "--jobs", "--sampler", "--pruner", "--seed", "--best-config-out"}) {
        if (cmd->count(flag) > 0) throw ConfigError(std::string(flag) + " does not apply with --show; drop one of them");
      }
    }
    f->seed_given = cmd->count("--seed") > 0;
    const int code = f->show ? show(*f) : tune_study(*f);
    if (code != 0) {
      std::cout.flush();
      std::exit(code);
    }
  });
}

}  // namespace kiln::cli
