// Where a study lives and how a tuning run finds it: default directory and storage, the study's
// stored search space, and creating a study or resuming one with the same space.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kiln/tune/storage.h"
#include "kiln/tune/study.h"
#include "kiln/tune/tune_config.h"

namespace kiln::tune {

/// The study directory used when none is given: "runs/tune/STUDY".
[[nodiscard]] std::string default_study_dir(const std::string& study);

/// The SQLite storage used when none is given: "sqlite:///" + the absolute, normalized path of
/// `study_dir`/study.db.
[[nodiscard]] std::string default_storage_url(const std::string& study_dir);

/// `study` when not empty, else the file name of `config_path` without its extension ("" when
/// both are empty).
[[nodiscard]] std::string study_name_or_default(const std::string& study, const std::string& config_path);

/// Where a study is: its name, directory and storage URL.
struct StudyLocation {
  std::string name, out, url;
};

/// Fills in the defaults of `kiln tune`: name = `study`, else the config file's name without its
/// extension ("" when both are empty); out = `out`, else default_study_dir(name); url = `storage`,
/// else default_storage_url(out).
[[nodiscard]] StudyLocation locate_study(const std::string& study, const std::string& config_path,
                                         const std::string& out, const std::string& storage);

/// The search space as stored in a study's "space" attribute: [{"name", "distribution"}, ...].
[[nodiscard]] nlohmann::json space_to_json(const SearchSpace& space);

/// The space a study was created with (its "space" attribute); empty when it has none or it does
/// not parse.
[[nodiscard]] SearchSpace stored_space(const StudyInfo& study);

/// Creates study `name` for `config` in `storage` (recording its space, metric name and config as
/// study attributes), or resumes it when it exists. Throws ConfigError when an existing study was
/// created with another search space, naming the study, `url` (password masked), the stored space
/// and the fix (a new study name, or the old space in config.path).
[[nodiscard]] StudyInfo create_or_resume_study(Storage& storage, const std::string& name, const TuneConfig& config,
                                               const std::string& url);

/// The existing study `name`. Throws ConfigError when `storage` lacks it, naming `url` (password
/// masked) and the studies it holds.
[[nodiscard]] StudyInfo find_existing_study(Storage& storage, const std::string& name, const std::string& url);

/// This process as a trial's "worker" attribute: "HOST:PID".
[[nodiscard]] std::string worker_id();

}  // namespace kiln::tune
