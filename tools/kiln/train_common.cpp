#include "train_common.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "kiln/artifact/artifact.h"
#include "kiln/core/atomic_output.h"
#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/core/parallel.h"
#include "kiln/core/progress.h"
#include "kiln/explain/explainer.h"
#include "kiln/pipeline/pipeline.h"
#include "kiln/train/data_parallel.h"
#include "verbs.h"

namespace fs = std::filesystem;

namespace kiln::cli {

namespace {

// Progress bars per step and one line per epoch on stderr.
train::TrainerCallbacks progress_callbacks(int epochs, std::shared_ptr<std::unique_ptr<core::ProgressBar>> bar) {
  train::TrainerCallbacks cb;
  cb.on_step = [bar, epochs](const train::StepInfo& s) {
    if (!*bar) {
      *bar = std::make_unique<core::ProgressBar>("epoch " + std::to_string(s.epoch) + "/" + std::to_string(epochs), s.batches);
    }
    if ((*bar)->live()) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "loss %.4f lr %.2e", s.loss, s.lr);
      (*bar)->update(s.batch, buf);
    }
  };
  cb.on_epoch = [bar, epochs](const train::EpochRecord& e) {
    char buf[256];
    if (std::isfinite(e.val_macro_f1)) {
      std::snprintf(buf, sizeof buf, "epoch %d/%d  loss %.4f  val_loss %.4f  val_acc %.4f  val_macro_f1 %.4f  lr %.2e  %s",
                    e.epoch, epochs, e.train_loss, e.val_loss, e.val_accuracy, e.val_macro_f1, e.lr,
                    core::format_duration(e.seconds).c_str());
    } else {
      std::snprintf(buf, sizeof buf, "epoch %d/%d  loss %.4f  lr %.2e  %s", e.epoch, epochs, e.train_loss, e.lr,
                    core::format_duration(e.seconds).c_str());
    }
    if (*bar && (*bar)->live()) (*bar)->finish();
    bar->reset();
    core::info(buf);
  };
  cb.on_warning = [](const std::string& w) { core::warn(w); };
  return cb;
}

// Saves the artifact and prints calibration and the metrics table.
TrainRunOutput save_and_report(const pipeline::PipelineResult& result, const train::RunConfig& cfg,
                               const std::string& out_dir) {
  for (const auto& w : result.warnings) core::warn(w);
  if (result.train.threads == 1 && result.train.step_flops > 0 && core::threads() > 1) {
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "trained on 1 thread of %d: a step is %.1f MFLOP, too little for a second thread to pay for "
                  "waking it (docs/performance.md)",
                  core::threads(), result.train.step_flops / 1e6);
    core::info(buf);
  }
  if (result.train.stopped_early) {
    core::info("early stopping: no better validation macro-F1 for " +
               std::to_string(cfg.trainer.early_stopping_patience) + " epochs; keeping epoch " +
               std::to_string(result.train.best_epoch));
  }
  const std::string artifact_dir = (fs::path(out_dir) / "model").string();
  pipeline::save(result, artifact_dir);
  try {  // exact and cheap for linear models; the artifact is saved either way
    if (explain::write_linear_importance(result.artifact, result.heldout, artifact_dir)) {
      core::info("importance: exact linear SHAP over the held-out sample -> " + artifact_dir + "/importance.json");
    }
  } catch (const kiln::Error& e) {
    core::warn(std::string("importance.json not written: ") + e.what());
  }
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
  // The run's report page; the model is saved either way, so a report that cannot be drawn warns.
  try {
    std::cout << "report: " << write_run_report(out_dir) << "\n";
  } catch (const kiln::Error& e) {
    core::warn(std::string("report not written: ") + e.what() + " (run `kiln report " + out_dir + "` to retry)");
  }
  return out;
}

}  // namespace

TrainRunOutput train_and_save(const train::RunConfig& config, const data::Dataset& train_ds, const data::Dataset* val,
                              const data::Dataset* test, const std::string& out_dir, bool resume,
                              train::DataParallel* parallel) {
  train::RunConfig cfg = config;
  cfg.trainer.run_dir = out_dir;
  cfg.trainer.resume = resume;
  const bool rank0 = !parallel || parallel->rank() == 0;
  if (rank0) fs::create_directories(out_dir);
  auto bar = std::make_shared<std::unique_ptr<core::ProgressBar>>();
  auto callbacks = rank0 ? progress_callbacks(cfg.trainer.epochs, bar) : train::TrainerCallbacks{};
  callbacks.parallel = parallel;
  const auto result = pipeline::run_pipeline(cfg, train_ds, val, test, callbacks);
  if (!rank0) return {};
  if (parallel) {
    const double steps = static_cast<double>(std::max<int64_t>(1, parallel->reduced_steps()));
    char buf[200];
    std::snprintf(buf, sizeof buf, "data-parallel: %d processes, %lld steps, exposed communication %.2f ms/step (rank 0)",
                  parallel->world_size(), static_cast<long long>(parallel->reduced_steps()),
                  1000.0 * parallel->exposed_comm_seconds() / steps);
    core::info(buf);
  }
  return save_and_report(result, cfg, out_dir);
}

TrainRunOutput select_and_save(pipeline::SelectionOptions options, const train::DataConfig& data_config,
                               const data::Dataset& train_ds, const data::Dataset* val, const data::Dataset* test,
                               const std::string& out_dir) {
  fs::create_directories(out_dir);
  std::string names;
  for (auto& c : options.candidates) {
    c.config.data = data_config;
    names += (names.empty() ? "" : ", ") + c.name;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "model selection among %s on validation macro-F1; budget %g passes over the training set%s",
                names.c_str(), options.budget, options.max_seconds > 0 ? " (capped by --max-time)" : "");
  core::info(buf);
  auto bar = std::make_shared<std::unique_ptr<core::ProgressBar>>();
  pipeline::SelectionCallbacks cb;
  cb.trainer = [bar](const pipeline::Candidate& c) { return progress_callbacks(c.config.trainer.epochs, bar); };
  cb.on_start = [](const pipeline::Candidate& c) { core::info("candidate " + c.name); };
  cb.on_done = [](const pipeline::CandidateReport& r) {
    char line[256];
    std::snprintf(line, sizeof line, "candidate %s: %s, best validation macro-F1 %.4f (epoch %d of %d), %.1f s",
                  r.name.c_str(), r.status.c_str(), std::isfinite(r.val_macro_f1) ? r.val_macro_f1 : 0.0, r.best_epoch,
                  r.epochs, r.seconds);
    core::info(std::isfinite(r.val_macro_f1) ? line : "candidate " + r.name + ": " + r.status);
  };
  auto selected = pipeline::select_model(options, train_ds, val, test, cb);
  core::info("validation: " + selected.validation);
  std::cout << "model selection (validation macro-F1)\n" << pipeline::format_selection_table(selected);
  // The chosen recipe as a config `kiln train --config` runs again (JSON is YAML): the winner's
  // run config, or for an ensemble the whole selection (its members are trained by different
  // recipes and pruned against the other candidates: the same selection gives the same ensemble).
  auto recipe = [&](const train::RunConfig& cfg) {
    nlohmann::json j = train::to_json(cfg);
    j["data"] = {{"text_col", data_config.text_col}, {"label_col", data_config.label_col}, {"seed", data_config.seed}};
    j["train"].erase("solver_threads");
    return j;
  };
  std::string lead = selected.chosen;  // the candidate whose recipe the report's settings name
  if (selected.chosen == "ensemble") {
    lead = selected.result.artifact.manifest.training["ensemble"]["members"][0]["candidate"].get<std::string>();
  }
  const train::RunConfig* winner = nullptr;
  for (const auto& c : options.candidates) {
    if (c.name == lead) winner = &c.config;
  }
  if (!winner) throw Error("model selection chose '" + selected.chosen + "', which is not one of its candidates");
  const std::string config_file = (fs::path(out_dir) / "selected_config.yaml").string();
  std::string text;
  if (selected.chosen == "ensemble") {
    nlohmann::json candidates = nlohmann::json::array();
    for (const auto& c : options.candidates) {
      nlohmann::json j = recipe(c.config);
      j.erase("data");
      candidates.push_back({{"name", c.name}, {"config", j}});
    }
    nlohmann::json again = {
        {"data", {{"text_col", data_config.text_col}, {"label_col", data_config.label_col}, {"seed", data_config.seed}}},
        {"selection",
         {{"candidates", candidates},
          {"budget", options.budget},
          {"keep_at_rungs", options.keep_at_rungs},
          {"ensemble", options.ensemble == pipeline::SelectionOptions::EnsemblePolicy::kAlways ? nlohmann::json("always")
                                                                                               : nlohmann::json(true)}}}};
    const auto& members = selected.result.artifact.manifest.training["ensemble"]["members"];
    text = "# kiln train --config " + config_file + " runs this model selection again: the same candidates and budget "
           "on the same data give the same ensemble (" + members[0]["candidate"].get<std::string>() + " + " +
           members[1]["candidate"].get<std::string>() + ")\n" + again.dump(2) + "\n";
  } else {
    text = "# kiln train --config " + config_file + " trains the chosen recipe (" + selected.chosen + ") again\n" +
           recipe(*winner).dump(2) + "\n";
  }
  core::write_file_atomic(config_file, text);
  std::cout << "chosen: " << selected.chosen << " (recipe: " << config_file << ")\n";
  return save_and_report(selected.result, *winner, out_dir);
}

ArtifactColumns artifact_columns(const nlohmann::json& training) {
  ArtifactColumns c;
  if (!training.is_object() || !training.contains("data") || !training["data"].is_object()) return c;
  const auto& d = training["data"];
  if (d.contains("text_col") && d["text_col"].is_string()) c.text_col = d["text_col"].get<std::string>();
  if (d.contains("image_col") && d["image_col"].is_string()) c.image_col = d["image_col"].get<std::string>();
  return c;
}

std::string artifact_arg(const std::string& dir) {
  const auto loc = artifact::locate_artifact(dir);
  if (loc.from_run_dir) core::info("using the artifact " + loc.dir + " of run directory " + dir);
  return loc.dir;
}

}  // namespace kiln::cli
