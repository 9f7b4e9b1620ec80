// kiln tune: hyperparameter search over a tune.yaml (a training run of Kiln's own, or any command),
// with a study stored in SQLite or PostgreSQL so it can be resumed and shared by many workers.
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/data/datasets.h"
#include "kiln/tune/command_objective.h"
#include "kiln/tune/grid_sampler.h"
#include "kiln/tune/hyperband_pruner.h"
#include "kiln/tune/importance.h"
#include "kiln/tune/pruner.h"
#include "kiln/tune/random_sampler.h"
#include "kiln/tune/storage.h"
#include "kiln/tune/tpe_sampler.h"
#include "kiln/tune/train_objective.h"
#include "kiln/tune/tune_config.h"
#include "kiln/tune/tuner.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) { g_interrupted = true; }

struct TuneFlags {
  std::string config, storage, study, out, sampler = "tpe", pruner = "median", timeout, heartbeat_timeout = "60s";
  std::string best_config_out, cache_dir;
  int64_t trials = 50;
  int jobs = 1;
  uint64_t seed = 0;
  bool seed_given = false;
  bool show = false;
};

std::string self_dir() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return ".";
  self[n] = '\0';
  std::string dir = self;
  return dir.substr(0, dir.find_last_of('/'));
}

std::string fmt(double v, const char* f = "%.4g") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string short_value(const nlohmann::json& v) {
  if (v.is_number_float()) return fmt(v.get<double>());
  return tune::param_text(v);
}

std::string params_text(const tune::Trial& t, bool exact) {
  std::string s;
  const nlohmann::json params = t.external_params();
  for (const auto& [name, value] : params.items()) {
    s += (s.empty() ? "" : " ") + name + "=" + (exact ? tune::param_text(value) : short_value(value));
  }
  return s;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string clip(std::string s, std::size_t n) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

// A trial's "fail_reason" on one line: its first line, and the last line of the output it quotes
// after "last output:" (where a command prints its error), each clipped.
std::string compact_reason(const std::string& reason) {
  const auto quoted = reason.find("last output:\n");
  std::string head = first_line(reason.substr(0, quoted));
  while (!head.empty() && (head.back() == ';' || std::isspace(static_cast<unsigned char>(head.back())))) head.pop_back();
  std::string s = clip(head, 160);
  if (quoted == std::string::npos) return s;
  std::string last;
  std::istringstream lines(reason.substr(quoted + 13));
  for (std::string line; std::getline(lines, line);) {
    const auto start = line.find_first_not_of(" \t\r");
    if (start != std::string::npos) last = line.substr(start);
  }
  if (!last.empty()) s += " | last output: " + clip(last, 120);
  return s;
}

std::string pad(std::string s, std::size_t w) {
  if (s.size() < w) s += std::string(w - s.size(), ' ');
  return s;
}

void print_header(const std::string& metric) {
  std::cout << pad("trial", 6) << pad("state", 10) << pad(metric, 14) << pad("duration", 10) << "params\n";
}

void print_row(const tune::Trial& t) {
  std::string value = t.value ? fmt(*t.value, "%.6g") : "-";
  if (t.state == tune::TrialState::kPruned && !t.intermediate.empty()) {
    value += " @" + std::to_string(t.intermediate.rbegin()->first);
  }
  const double end = t.datetime_complete ? *t.datetime_complete : tune::unix_now();
  std::string line = pad(std::to_string(t.number), 6) + pad(tune::to_string(t.state), 10) + pad(value, 14) +
                     pad(fmt(end - t.datetime_start, "%.1fs"), 10) + params_text(t, false);
  if (t.state == tune::TrialState::kFailed) {
    const auto it = t.user_attrs.find("fail_reason");
    if (it != t.user_attrs.end()) line += "  (" + compact_reason(it->second) + ")";
  }
  std::cout << line << std::endl;
}

std::string best_line(const std::optional<tune::Trial>& best) {
  if (!best) return "no complete trial yet";
  return "best value " + tune::param_text(*best->value) + " at trial " + std::to_string(best->number) + ": " +
         params_text(*best, true);
}

void print_importances(const std::vector<tune::Trial>& trials, const tune::SearchSpace& space) {
  const auto imp = tune::param_importances(trials, space);
  if (imp.empty()) return;
  std::string s;
  for (const auto& p : imp) s += (s.empty() ? "" : "  ") + p.name + " " + fmt(p.importance, "%.2f");
  std::cout << "importance (share of variance explained by marginal means): " << s << "\n";
}

/// The space a study was created with (its "space" attribute), or empty.
tune::SearchSpace stored_space(const tune::StudyInfo& study) {
  tune::SearchSpace space;
  const auto it = study.user_attrs.find("space");
  if (it == study.user_attrs.end()) return space;
  const auto j = nlohmann::json::parse(it->second, nullptr, false);
  if (!j.is_array()) return space;
  for (const auto& p : j) space.emplace_back(p.at("name").get<std::string>(), tune::Distribution::from_json(p.at("distribution"), "study space"));
  return space;
}

nlohmann::json space_json(const tune::SearchSpace& space) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [name, d] : space) j.push_back({{"name", name}, {"distribution", d.to_json()}});
  return j;
}

std::string default_out(const std::string& study) { return (fs::path("runs") / "tune" / study).string(); }

std::string default_storage(const std::string& out) {
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(out) / "study.db", ec);
  return "sqlite:///" + p.lexically_normal().string();
}

int show(const TuneFlags& f) {
  std::string study_name = f.study;
  if (study_name.empty() && !f.config.empty()) study_name = fs::path(f.config).stem().string();
  if (study_name.empty()) throw ConfigError("--show needs --study NAME (or --config FILE, whose name is the default study)");
  const std::string url = f.storage.empty() ? default_storage(f.out.empty() ? default_out(study_name) : f.out) : f.storage;
  auto storage = tune::open_storage(url);
  const auto study = storage->find_study(study_name);
  if (!study) {
    std::string names;
    for (const auto& s : storage->list_studies()) names += (names.empty() ? "" : ", ") + s.name;
    throw ConfigError("no study '" + study_name + "' in " + tune::mask_url_password(url) +
                      (names.empty() ? " (it holds no study)" : " (it holds: " + names + ")") + "; check --study and --storage");
  }
  const auto trials = storage->trials(study->id);
  const auto metric = study->user_attrs.count("metric") ? study->user_attrs.at("metric") : std::string("value");
  std::cout << "study " << study->name << " (" << tune::to_string(study->direction) << " " << metric << ")\n";
  print_header(metric);
  int64_t counts[4] = {0, 0, 0, 0};
  for (const auto& t : trials) {
    print_row(t);
    ++counts[static_cast<int>(t.state)];
  }
  std::cout << trials.size() << " trials: " << counts[1] << " complete, " << counts[2] << " pruned, " << counts[3]
            << " failed, " << counts[0] << " running\n";
  print_importances(trials, stored_space(*study));
  std::cout << best_line(tune::best_trial(trials, study->direction)) << "\n";
  return 0;
}

int tune_study(const TuneFlags& f) {
  if (f.config.empty()) throw ConfigError("--config is required (or --show to print a study)");
  const tune::TuneConfig config = tune::load_tune_config(f.config);
  const std::string study_name = f.study.empty() ? fs::path(f.config).stem().string() : f.study;
  const std::string out = f.out.empty() ? default_out(study_name) : f.out;
  const std::string url = f.storage.empty() ? default_storage(out) : f.storage;
  const bool shared = url.rfind("postgres", 0) == 0;

  tune::TunerOptions options;
  options.n_trials = f.trials;
  options.timeout_s = f.timeout.empty() ? 0 : tune::parse_duration(f.timeout, "--timeout");
  options.jobs = f.jobs;
  options.heartbeat_timeout_s = tune::parse_duration(f.heartbeat_timeout, "--heartbeat-timeout");
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  options.worker = std::string(host) + ":" + std::to_string(::getpid());
  tune::validate(options);

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw IoError("cannot create the study directory " + out + ": " + ec.message() + "; choose another --out");
  options.trials_dir = fs::absolute(fs::path(out) / "trials", ec);
  auto storage = tune::open_storage(url);

  // The study: created, or resumed when it exists with the same direction and space.
  const auto existing = storage->find_study(study_name);
  const tune::StudyInfo study = storage->create_or_load_study(study_name, config.direction);
  const std::string space_text = space_json(config.space).dump();
  if (existing) {
    const auto it = study.user_attrs.find("space");
    if (it != study.user_attrs.end() && it->second != space_text) {
      throw ConfigError("study '" + study_name + "' in " + tune::mask_url_password(url) + " was created with another search space (" +
                        it->second + "); tune under a new --study name, or restore the space of " + f.config);
    }
  } else {
    storage->set_study_attr(study.id, "space", space_text);
    storage->set_study_attr(study.id, "metric", config.metric_name);
    storage->set_study_attr(study.id, "config", config.raw.dump());
  }

  // Strategy: sampler and pruner.
  std::unique_ptr<tune::Sampler> sampler;
  tune::GridSampler* grid = nullptr;
  if (f.sampler != "grid") {
    for (const auto& [name, values] : config.grid) {
      core::warn(f.config + ": space." + name + ".grid is used only by --sampler grid; --sampler " + f.sampler +
                 " samples the whole domain (drop the grid values or use --sampler grid)");
    }
  }
  const std::optional<uint64_t> seed = f.seed_given ? std::optional<uint64_t>(f.seed) : std::nullopt;
  if (f.sampler == "tpe") {
    tune::TpeSamplerOptions o;
    o.seed = seed;
    o.constant_liar = f.jobs > 1 || shared;  // parallel workers spread out instead of proposing alike
    sampler = std::make_unique<tune::TpeSampler>(o);
  } else if (f.sampler == "random") {
    sampler = std::make_unique<tune::RandomSampler>(tune::RandomSamplerOptions{seed});
  } else {
    tune::GridSamplerOptions o;
    o.seed = seed;
    o.values = config.grid;
    auto g = std::make_unique<tune::GridSampler>(config.space, o);
    grid = g.get();
    sampler = std::move(g);
  }
  std::unique_ptr<tune::Pruner> pruner;
  tune::HyperbandPruner* hyperband = nullptr;
  if (f.pruner == "median") {
    pruner = std::make_unique<tune::PercentilePruner>(tune::PercentilePrunerOptions{});
  } else if (f.pruner == "hyperband") {
    tune::HyperbandPrunerOptions o;
    o.study_name = study_name;
    auto h = std::make_unique<tune::HyperbandPruner>(o);
    hyperband = h.get();
    pruner = std::move(h);
  }
  tune::PruneFn prune;
  if (pruner) {
    prune = [p = pruner.get()](const std::vector<tune::Trial>& all, const tune::Trial& t, tune::Direction d) {
      return p->should_prune(all, t, d);
    };
  }

  // Objective.
  std::unique_ptr<tune::Objective> objective;
  if (config.kind == tune::ObjectiveKind::kCommand) {
    objective = std::make_unique<tune::CommandObjective>(config.command);
  } else {
    tune::TrainObjectiveOptions o;
    o.kiln_ml = self_dir() + "/kiln-ml";
    o.threads = std::max(1, core::threads() / f.jobs);
    o.cache_dir = f.cache_dir;
    if (::access(o.kiln_ml.c_str(), X_OK) != 0) {
      throw IoError("cannot run " + o.kiln_ml + ": training trials need kiln-ml next to kiln; rebuild (scripts/setup.sh)");
    }
    if (config.train.train_file.empty()) {
      // Fetched once here, not by every trial at the same time.
      const nlohmann::json data_section = config.train.base.contains("data") ? config.train.base["data"] : nlohmann::json();
      const std::string dataset = data_section.is_object() && data_section.contains("dataset") && data_section["dataset"].is_string()
                                      ? data_section["dataset"].get<std::string>()
                                      : std::string("spamassassin");  // the run config's default
      data::FetchOptions fo;
      fo.dir = f.cache_dir;
      core::info("fetching " + dataset);
      (void)data::fetch_dataset(dataset, fo);
    }
    objective = std::make_unique<tune::TrainObjective>(config.train, o);
  }

  tune::TunerCallbacks cb;
  cb.on_trial_end = [](const tune::Trial& t) { print_row(t); };
  cb.on_stale = [](const std::vector<int64_t>& numbers) {
    for (const auto n : numbers) {
      core::warn("trial " + std::to_string(n) + " had no heartbeat for too long (its worker died): marked failed");
    }
  };
  tune::Tuner tuner(*storage, study, config.space, *sampler, prune, *objective, options, cb);
  if (grid) tuner.set_exhausted([grid](const std::vector<tune::Trial>& all) { return grid->exhausted(all); });
  if (hyperband && !grid) {
    // As Optuna: the sampler learns only from the new trial's bracket. The grid keeps seeing every
    // trial, so that no point is proposed twice (Optuna's grid also picks from the whole study).
    tuner.set_sampler_view([hyperband](const std::vector<tune::Trial>& all, int64_t number) {
      tune::Trial next;
      next.number = number;
      return hyperband->bracket_trials(all, next);
    });
  }

  const auto before = storage->trials(study.id);
  int64_t done_before = 0;
  for (const auto& t : before) done_before += t.state == tune::TrialState::kComplete || t.state == tune::TrialState::kPruned;
  core::info("study " + study_name + " in " + tune::mask_url_password(url) + ": " + std::to_string(before.size()) +
             " trials so far (" + std::to_string(done_before) + " complete or pruned); trials run in " +
             options.trials_dir.string());
  print_header(config.metric_name);

  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  tune::TuneSummary summary;
  try {
    summary = tuner.run(&g_interrupted);
  } catch (...) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    throw;
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);

  if (summary.reason == tune::StopReason::kConfigError) {
    throw ConfigError(summary.config_error + "\n(every trial would fail the same way; fix " + f.config + ")");
  }
  const auto trials = storage->trials(study.id);
  int64_t counts[4] = {0, 0, 0, 0};
  for (const auto& t : trials) ++counts[static_cast<int>(t.state)];
  const char* why = "";
  switch (summary.reason) {
    case tune::StopReason::kTrials: why = "the study has its trials"; break;
    case tune::StopReason::kTimeout: why = "--timeout reached"; break;
    case tune::StopReason::kExhausted: why = "the grid is exhausted"; break;
    case tune::StopReason::kInterrupted: why = "interrupted; run the same command again to resume"; break;
    case tune::StopReason::kFailures: why = "too many trials failed in a row; see their reasons above"; break;
    case tune::StopReason::kConfigError: break;
  }
  core::info("stopped: " + std::string(why) + ". This run: " + std::to_string(summary.completed) + " complete, " +
             std::to_string(summary.pruned) + " pruned, " + std::to_string(summary.failed) + " failed; study: " +
             std::to_string(counts[1]) + " complete, " + std::to_string(counts[2]) + " pruned, " +
             std::to_string(counts[3]) + " failed");
  print_importances(trials, config.space);

  if (summary.best) {
    const nlohmann::json params = summary.best->external_params();
    std::string path = f.best_config_out;
    std::string text;
    if (config.kind == tune::ObjectiveKind::kTrain) {
      if (path.empty()) path = (fs::path(out) / "best.yaml").string();
      text = "# Best run config of kiln tune study " + study_name + ": trial " + std::to_string(summary.best->number) + ", " +
             config.metric_name + " " + tune::param_text(*summary.best->value) + "\n#   kiln train --config " + path +
             " ...\n" + tune::apply_train_params(config.train.base, params).dump(2) + "\n";
    } else {
      if (path.empty()) path = (fs::path(out) / "best_params.yaml").string();
      text = "# Best parameters of kiln tune study " + study_name + ": trial " + std::to_string(summary.best->number) + ", " +
             config.metric_name + " " + tune::param_text(*summary.best->value) + "\n" + params.dump(2) + "\n";
    }
    core::write_file_atomic(path, text);
    core::info("best " + std::string(config.kind == tune::ObjectiveKind::kTrain ? "config" : "parameters") + ": " + path);
  }
  std::cout << best_line(summary.best) << std::endl;
  if (summary.reason == tune::StopReason::kInterrupted) return 130;
  if (!summary.best) return 1;
  return 0;
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
