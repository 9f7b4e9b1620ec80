#include <filesystem>
#include <iostream>
#include <system_error>

#include "kiln/core/error.h"
#include "kiln/core/log.h"
#include "kiln/data/dataset.h"
#include "kiln/data/image.h"
#include "dist_flags.h"
#include "train_common.h"
#include "train_flags.h"
#include "verbs.h"

namespace kiln::cli {
namespace {

std::string fs_absolute(const std::string& path) {
  std::error_code ec;
  const auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

}  // namespace

void add_train(CLI::App& app) {
  struct Flags {
    TrainFlags train;
    DistFlags dist;
    std::string train_file, val_file, test_file, out, format = "auto", text_col = "text", label_col = "label";
    std::string image_col, on_bad_image = "error";
    int64_t image_size = 0;
    bool resume = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("train", ml_verb_description("train"));
  cmd->add_option("--train", f->train_file, "Training data (CSV/TSV/JSONL/JSON with text and label)")->required();
  cmd->add_option("--val", f->val_file, "Validation data (early stopping, best epoch)");
  cmd->add_option("--test", f->test_file, "Test data (final metrics)");
  cmd->add_option("--out", f->out, "Run directory: checkpoints, metrics.jsonl, and the artifact in OUT/model")->required();
  cmd->add_option("--format", f->format, "Input format: auto|csv|tsv|jsonl|json")->capture_default_str();
  cmd->add_option("--text-col", f->text_col, "Text column")->capture_default_str();
  cmd->add_option("--image-col", f->image_col,
                  "Image-path column (paths relative to the data file's folder); default: the model's preset's "
                  "(\"image\" for --model cnn), else none");
  cmd->add_option("--on-bad-image", f->on_bad_image,
                  "An image that is missing, corrupt, truncated or too large: error (naming the row and file) or skip "
                  "(drop the row, with a count)")
      ->capture_default_str();
  cmd->add_option("--image-size", f->image_size,
                  "Resize images to N x N (featurizer.size); default: the images' own size when they share one, else 64")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--label-col", f->label_col, "Label column")->capture_default_str();
  cmd->add_flag("--resume", f->resume, "Continue from the run directory's last checkpoint");
  f->train.add_to(*cmd);
  f->dist.add_to(*cmd);
  cmd->callback([f, cmd]() {
    const DistPlan plan = f->dist.resolve();
    auto config = f->train.resolve();
    // Selection keeps no checkpoints (candidates live in memory), so --resume means one model's run.
    auto selection = f->resume ? std::nullopt : f->train.selection();
    if (selection && plan.parallel()) {
      throw ConfigError("data-parallel training (--nproc/WORLD_SIZE " + std::to_string(plan.options.world_size) +
                        ") trains one model, but without --model or --config kiln train selects among several, "
                        "which runs in one process; add --model (e.g. --model embedbag) or --config");
    }
    if (plan.parallel()) check_data_parallel(config.trainer, plan);
    if (plan.role == DistPlan::Role::kLauncher) {
      launch_workers(plan);
      return;
    }
    std::unique_ptr<train::DataParallel> dp;
    if (plan.role == DistPlan::Role::kWorker) dp = join_as_worker(plan);
    run_as_rank(dp.get(), [&] {
    // The rows come from these files, not from a named dataset: record that in the artifact.
    config.data.dataset.clear();
    config.data.train_file = fs_absolute(f->train_file);
    config.data.val_file = f->val_file.empty() ? "" : fs_absolute(f->val_file);
    config.data.test_file = f->test_file.empty() ? "" : fs_absolute(f->test_file);
    // Columns: the flags when given, else the preset's (a cnn reads "image" and no text).
    if (cmd->count("--text-col") || config.data.image_col.empty()) config.data.text_col = f->text_col;
    if (cmd->count("--image-col")) config.data.image_col = f->image_col;
    config.data.label_col = f->label_col;
    if (f->image_size > 0) {
      bool set = false;
      auto apply = [&](nlohmann::json& spec) {
        if (spec.value("type", std::string()) == "image") spec["size"] = {f->image_size, f->image_size}, set = true;
      };
      if (config.featurizer.is_array()) {
        for (auto& spec : config.featurizer) apply(spec);
      } else {
        apply(config.featurizer);
      }
      if (!set) throw ConfigError("--image-size needs an image featurizer (featurizer.type: image, e.g. --model cnn)");
    }
    const auto bad_image = data::bad_image_policy_from_name(f->on_bad_image, "--on-bad-image");
    data::LoadOptions lo;
    lo.reader.format = data::parse_format(f->format);
    lo.text_col = config.data.text_col;
    lo.image_col = config.data.image_col;
    lo.label_col = f->label_col;
    lo.allowed_labels = config.data.labels;
    auto load = [&](const std::string& file) {
      auto ds = data::load_labeled(file, lo, nullptr);
      const auto dropped = data::check_images(ds, {}, bad_image, nullptr, file);
      if (dropped > 0) core::warn(file + ": skipped " + std::to_string(dropped) + " row(s) with an unreadable image (bad_image)");
      return ds;
    };
    auto train_ds = load(f->train_file);
    data::Dataset val_ds, test_ds;
    if (!f->val_file.empty()) val_ds = load(f->val_file);
    if (!f->test_file.empty()) test_ds = load(f->test_file);
    const data::Dataset* val = f->val_file.empty() ? nullptr : &val_ds;
    const data::Dataset* test = f->test_file.empty() ? nullptr : &test_ds;
    if (selection) {
      (void)select_and_save(*selection, config.data, train_ds, val, test, f->out);
    } else {
      (void)train_and_save(config, train_ds, val, test, f->out, f->resume, dp.get());
    }
    });
  });
}

}  // namespace kiln::cli
