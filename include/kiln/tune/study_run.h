// One tuning run of a study, from its tune.yaml: resolves the study's name, directory and storage
// (defaults as `kiln tune`), creates or resumes the study, builds the strategy, runs the Tuner and
// writes the best trial's config. The caller brings the objective and draws progress from the
// callbacks; nothing here prints.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/tune/best_config.h"
#include "kiln/tune/storage.h"
#include "kiln/tune/strategy.h"
#include "kiln/tune/tune_config.h"
#include "kiln/tune/tuner.h"

namespace kiln::tune {

struct StudyRunOptions {
  /// The tune.yaml. Required.
  std::string config_path;
  /// Study name. Default "": the config file's name without its extension.
  std::string study;
  /// Study directory (trials/, best config, default SQLite file); created if missing. Default "":
  /// runs/tune/STUDY.
  std::string out;
  /// Storage URL (see open_storage). Default "": SQLite in OUT/study.db.
  std::string storage;
  /// Sampler, pruner, seed (see StrategyOptions). `study_name` is set to the study's name, and
  /// `parallel` is set when tuner.jobs > 1 or the storage is PostgreSQL (shared by workers).
  StrategyOptions strategy;
  /// The loop (see TunerOptions). Empty trials_dir: OUT/trials (absolute); empty worker: worker_id().
  TunerOptions tuner;
  /// Where to write the best trial's file. Default "": see BestConfigFile::path.
  std::string best_config_out;
};

class StudyRun {
 public:
  /// Loads the config, creates the study directory, opens the storage, creates or resumes the
  /// study and builds the strategy. Throws ConfigError (config, options, a resumed study with
  /// another space), IoError (directory, storage) naming the file or URL and the fix.
  explicit StudyRun(StudyRunOptions options);

  [[nodiscard]] const StudyRunOptions& options() const { return options_; }
  [[nodiscard]] const TuneConfig& config() const { return config_; }
  [[nodiscard]] const std::string& name() const { return options_.study; }
  [[nodiscard]] const std::string& out_dir() const { return options_.out; }
  /// The storage URL (may hold a password: mask_url_password before showing it).
  [[nodiscard]] const std::string& url() const { return options_.storage; }
  [[nodiscard]] const StudyInfo& study() const { return study_; }
  [[nodiscard]] const Strategy& strategy() const { return strategy_; }
  /// Every trial of the study so far (all workers).
  [[nodiscard]] std::vector<Trial> trials() const;
  /// "study NAME in URL: N trials so far (M complete or pruned); trials run in DIR" (password masked).
  [[nodiscard]] std::string describe() const;

  /// Runs trials (see Tuner::run) with `objective` until a stop condition. Throws ConfigError when
  /// the objective found an error in the config (every trial would fail the same way), naming the
  /// config file; what the storage throws.
  [[nodiscard]] TuneSummary run(Objective& objective, TunerCallbacks callbacks = {},
                                const std::atomic<bool>* interrupt = nullptr);

  /// Writes the best trial's file (see best_config_file) when the summary has a best trial, and
  /// returns it.
  std::optional<BestConfigFile> write_best(const TuneSummary& summary) const;

 private:
  StudyRunOptions options_;
  TuneConfig config_;
  std::unique_ptr<Storage> storage_;
  StudyInfo study_;
  Strategy strategy_;
};

}  // namespace kiln::tune
