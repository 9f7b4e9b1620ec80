// Training flags shared by `kiln train` and `kiln run`. Given flags override the config; they are
// collected as a config patch so that flags and YAML go through the same validation.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "kiln/pipeline/select.h"
#include "kiln/train/run_config.h"

namespace kiln::cli {

/// Whether the YAML file at `path` is a model selection's config (it has a `selection` section)
/// rather than one model's run config. Throws ConfigError for an unreadable file.
[[nodiscard]] bool selection_config(const std::string& path);

class TrainFlags {
 public:
  /// Registers the flags on `cmd`.
  void add_to(CLI::App& cmd);
  /// The config to run: --config (or the preset of --model, or the recommended default) with the
  /// given flags applied. Throws ConfigError when --model contradicts the config's model family.
  [[nodiscard]] train::RunConfig resolve() const;
  /// Model selection when no --model, no --config and no flag that only makes sense for one model
  /// (--lr, --batch-size, ...) is given: the default candidates with the general flags (--epochs,
  /// --seed, --device, --calibrate, --patience, --class-weight) applied to each, and --budget (or
  /// the default budget) and --max-time. std::nullopt: train the one model resolve() gives. Throws
  /// ConfigError when --budget or --max-time comes with --model/--config or a model-specific flag.
  /// A --config file with a `selection` section (what kiln train writes as selected_config.yaml
  /// when it chose an ensemble) runs that selection again: its candidates ({name, config}) and
  /// budget, with the general flags applied.
  [[nodiscard]] std::optional<pipeline::SelectionOptions> selection() const;
  std::string config_path;
  std::string model;

 private:
  CLI::App* cmd_ = nullptr;
  int epochs = 0;
  int64_t batch_size = 0;
  double lr = 0, weight_decay = 0, warmup_ratio = 0, grad_clip = 0, focal_gamma = 0, label_smoothing = 0;
  int patience = 0;
  uint64_t seed = 0;
  int64_t max_features = 0;
  int64_t max_length = 0;
  int64_t vocab_size = 0;
  std::string long_text;
  int64_t stride = 0;
  std::string vocab, init, preset, text_encoder;
  std::string optimizer, schedule, loss, class_weight, device, calibrate, max_time;
  double budget = 0;
  /// The given flags, as a config patch (general ones and model-specific ones apart).
  [[nodiscard]] nlohmann::json general_patch() const;
  [[nodiscard]] nlohmann::json specific_patch(const train::RunConfig& c) const;
  [[nodiscard]] bool given(const char* flag) const { return cmd_ && cmd_->count(flag) > 0; }
};

}  // namespace kiln::cli
