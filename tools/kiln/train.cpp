#include <filesystem>
#include <iostream>
#include <system_error>

#include "kiln/core/error.h"
#include "kiln/data/dataset.h"
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
    std::string train_file, val_file, test_file, out, format = "auto", text_col = "text", label_col = "label";
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
  cmd->add_option("--label-col", f->label_col, "Label column")->capture_default_str();
  cmd->add_flag("--resume", f->resume, "Continue from the run directory's last checkpoint");
  f->train.add_to(*cmd);
  cmd->callback([f]() {
    auto config = f->train.resolve();
    // The rows come from these files, not from a named dataset: record that in the artifact.
    config.data.dataset.clear();
    config.data.train_file = fs_absolute(f->train_file);
    config.data.val_file = f->val_file.empty() ? "" : fs_absolute(f->val_file);
    config.data.test_file = f->test_file.empty() ? "" : fs_absolute(f->test_file);
    config.data.text_col = f->text_col;
    config.data.label_col = f->label_col;
    data::LoadOptions lo;
    lo.reader.format = data::parse_format(f->format);
    lo.text_col = f->text_col;
    lo.label_col = f->label_col;
    lo.allowed_labels = config.data.labels;
    auto train_ds = data::load_labeled(f->train_file, lo, nullptr);
    data::Dataset val_ds, test_ds;
    if (!f->val_file.empty()) val_ds = data::load_labeled(f->val_file, lo, nullptr);
    if (!f->test_file.empty()) test_ds = data::load_labeled(f->test_file, lo, nullptr);
    const data::Dataset* val = f->val_file.empty() ? nullptr : &val_ds;
    const data::Dataset* test = f->test_file.empty() ? nullptr : &test_ds;
    // Selection keeps no checkpoints (candidates live in memory), so --resume means one model's run.
    auto selection = f->resume ? std::nullopt : f->train.selection();
    if (selection) {
      (void)select_and_save(*selection, config.data, train_ds, val, test, f->out);
    } else {
      (void)train_and_save(config, train_ds, val, test, f->out, f->resume);
    }
  });
}

}  // namespace kiln::cli
