#include "kiln/tune/best_config.h"

#include <filesystem>

#include "kiln/core/atomic_output.h"
#include "kiln/tune/objective.h"

namespace fs = std::filesystem;

namespace kiln::tune {

BestConfigFile best_config_file(const TuneConfig& config, const std::string& study_name, const Trial& best,
                                const std::string& study_dir, const std::string& path) {
  const nlohmann::json params = best.external_params();
  const std::string value = best.value ? param_text(*best.value) : std::string("-");
  BestConfigFile f;
  f.path = path;
  if (config.kind == ObjectiveKind::kTrain) {
    if (f.path.empty()) f.path = (fs::path(study_dir) / "best.yaml").string();
    f.kind = "config";
    f.text = "# Best run config of kiln tune study " + study_name + ": trial " + std::to_string(best.number) + ", " +
             config.metric_name + " " + value + "\n#   kiln train --config " + f.path + " ...\n" +
             apply_train_params(config.train.base, params).dump(2) + "\n";
  } else {
    if (f.path.empty()) f.path = (fs::path(study_dir) / "best_params.yaml").string();
    f.kind = "parameters";
    f.text = "# Best parameters of kiln tune study " + study_name + ": trial " + std::to_string(best.number) + ", " +
             config.metric_name + " " + value + "\n" + params.dump(2) + "\n";
  }
  return f;
}

void write_best_config(const BestConfigFile& file) { core::write_file_atomic(file.path, file.text); }

}  // namespace kiln::tune
