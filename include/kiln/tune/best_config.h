// The file a tuning run leaves for its best trial: a Kiln run config ready for `kiln train --config`
// (training objectives), or the best parameters (command objectives), as YAML-compatible JSON with a
// comment header naming the study, the trial and its value.
#pragma once

#include <string>

#include "kiln/tune/study.h"
#include "kiln/tune/tune_config.h"

namespace kiln::tune {

struct BestConfigFile {
  /// Where it goes: the requested path, else STUDY_DIR/best.yaml (training objectives) or
  /// STUDY_DIR/best_params.yaml (command objectives).
  std::string path;
  /// The file's content, ending in "\n".
  std::string text;
  /// "config" (a run config) or "parameters".
  std::string kind;
};

/// The best-trial file for `best` (a complete trial of study `study_name` run from `config`).
/// `path` empty = the default under `study_dir`. Throws ConfigError when a parameter has no place
/// in the run config (see apply_train_params).
[[nodiscard]] BestConfigFile best_config_file(const TuneConfig& config, const std::string& study_name,
                                              const Trial& best, const std::string& study_dir,
                                              const std::string& path = "");

/// Writes `file` through the atomic writer (whole or not at all); throws IoError naming the path.
void write_best_config(const BestConfigFile& file);

}  // namespace kiln::tune
