#include "train_common.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "kiln/artifact/artifact.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/log.h"
#include "kiln/core/progress.h"
#include "kiln/pipeline/pipeline.h"

namespace fs = std::filesystem;

namespace kiln::cli {

TrainRunOutput train_and_save(const train::RunConfig& config, const data::Dataset& train_ds, const data::Dataset* val,
                              const data::Dataset* test, const std::string& out_dir, bool resume) {
  train::RunConfig cfg = config;
  cfg.trainer.run_dir = out_dir;
  cfg.trainer.resume = resume;
  fs::create_directories(out_dir);

  std::unique_ptr<core::ProgressBar> bar;
  train::TrainerCallbacks cb;
  cb.on_step = [&](const train::StepInfo& s) {
    if (!bar) {
      bar = std::make_unique<core::ProgressBar>("epoch " + std::to_string(s.epoch) + "/" + std::to_string(cfg.trainer.epochs),
                                                s.batches);
    }
    if (bar->live()) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "loss %.4f lr %.2e", s.loss, s.lr);
      bar->update(s.batch, buf);
    }
  };
  cb.on_epoch = [&](const train::EpochRecord& e) {
    char buf[256];
    if (std::isfinite(e.val_macro_f1)) {
      std::snprintf(buf, sizeof buf, "epoch %d/%d  loss %.4f  val_loss %.4f  val_acc %.4f  val_macro_f1 %.4f  lr %.2e  %s",
                    e.epoch, cfg.trainer.epochs, e.train_loss, e.val_loss, e.val_accuracy, e.val_macro_f1, e.lr,
                    core::format_duration(e.seconds).c_str());
    } else {
      std::snprintf(buf, sizeof buf, "epoch %d/%d  loss %.4f  lr %.2e  %s", e.epoch, cfg.trainer.epochs, e.train_loss,
                    e.lr, core::format_duration(e.seconds).c_str());
    }
    if (bar && bar->live()) {
      bar->finish();
    }
    bar.reset();
    core::info(buf);
  };
  cb.on_warning = [](const std::string& w) { core::warn(w); };

  auto result = pipeline::run_pipeline(cfg, train_ds, val, test, cb);
  for (const auto& w : result.warnings) core::warn(w);
  if (result.train.stopped_early) {
    core::info("early stopping: no better validation macro-F1 for " +
               std::to_string(cfg.trainer.early_stopping_patience) + " epochs; keeping epoch " +
               std::to_string(result.train.best_epoch));
  }
  const std::string artifact_dir = (fs::path(out_dir) / "model").string();
  pipeline::save(result, artifact_dir);
  const auto& labels = result.artifact.manifest.labels;
  const auto& cal = result.artifact.manifest.calibration;
  if (cal.value("method", std::string()) == "temperature") {
    char buf[256];
    auto num = [](const nlohmann::json& v) { return v.is_number() ? v.get<double>() : std::nan(""); };
    std::snprintf(buf, sizeof buf, "calibration: temperature %.4g fitted on %lld validation rows (ECE %.4f -> %.4f)",
                  cal["temperature"].get<double>(), static_cast<long long>(cal["examples"].get<int64_t>()),
                  num(cal["ece_before"]), num(cal["ece_after"]));
    core::info(buf);
  } else if (cal.contains("reason")) {
    core::info("calibration: none (" + cal["reason"].get<std::string>() + ")");
  } else if (cfg.trainer.calibrate == "temperature") {
    core::info("calibration: none (no validation rows to fit a temperature on; give --val)");
  }
  const auto& metrics = result.artifact.manifest.metrics;
  TrainRunOutput out;
  out.artifact_dir = artifact_dir;
  if (result.has_test) {
    std::cout << "test set (" << result.test_metrics.n << " rows)\n"
              << train::format_metrics_table(result.test_metrics, labels);
    out.metrics = metrics["test"];
  } else if (result.has_val) {
    std::cout << "validation set (" << result.val_metrics.n << " rows)\n"
              << train::format_metrics_table(result.val_metrics, labels);
    out.metrics = metrics["validation"];
  }
  std::cout << "artifact: " << artifact_dir << "\n";
  return out;
}

std::string artifact_arg(const std::string& dir) {
  const auto loc = artifact::locate_artifact(dir);
  if (loc.from_run_dir) core::info("using the artifact " + loc.dir + " of run directory " + dir);
  return loc.dir;
}

}  // namespace kiln::cli
